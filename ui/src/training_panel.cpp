#include "msconv/ui/training_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDateTime>
#include <QEvent>
#include <QFile>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QPageSize>
#include <QPdfWriter>
#include <QPushButton>
#include <QSaveFile>
#include <QSlider>
#include <QTextStream>
#include <QVBoxLayout>
#include "plot_style.h"
#include "qcustomplot_include.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "msconv/config/config.h"
#include "msconv/error.h"
#include "msconv/eval/metric_name.h"
#include "msconv/store/run_store.h"
#include "msconv/study/study.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/smoothing.h"
#include "msconv/workspace/workspace.h"

namespace msconv::ui {
namespace {

enum Plot { kLoss, kAccuracy, kTar, kLr, kSamples, kGrad, kPlots };
const char* kTitles[] = {"loss",
                         "validation accuracy (mean over sets)",
                         "TAR@FAR (mean over sets)",
                         "learning rate",
                         "samples/s",
                         "gradient norm"};
constexpr bool kLogCapable[] = {true, false, false, true, true, true};
// Which way is best. Validation plots judge raw values.
using Best = ChartSeries::Best;
constexpr Best kBest[] = {Best::kMin, Best::kMax, Best::kMax, Best::kNone, Best::kMax, Best::kNone};
constexpr bool kValidationPlot[] = {false, true, true, false, false, false};

double nowSeconds() {
  return QDateTime::currentMSecsSinceEpoch() / 1000.0;
}

// The FAR of a TAR@FAR metric ("val/x.bin/tar@far=1e-03" -> "1e-03"); "" for other metrics.
QString farOf(const QString& key) {
  const auto m = eval::MetricName::parse(key.toStdString());
  return m && m->kind == eval::MetricName::Kind::kTarAtFar
             ? QString::fromStdString(eval::MetricName::farText(m->far))
             : QString();
}

bool isAccuracy(const QString& key) {
  const auto m = eval::MetricName::parse(key.toStdString());
  return m && m->kind == eval::MetricName::Kind::kAccuracy;
}

QString formatX(TrainingPanel::XAxis mode, double x) {
  switch (mode) {
    case TrainingPanel::XAxis::kStep:
      return QString("step %1").arg(static_cast<qint64>(std::llround(x)));
    case TrainingPanel::XAxis::kRelative: {
      const qint64 s = std::llround(x);
      return QString("%1:%2:%3")
          .arg(s / 3600)
          .arg((s / 60) % 60, 2, 10, QChar('0'))
          .arg(s % 60, 2, 10, QChar('0'));
    }
    case TrainingPanel::XAxis::kWall:
      return QDateTime::fromMSecsSinceEpoch(static_cast<qint64>(x * 1000)).toString("hh:mm:ss");
  }
  return {};
}

}  // namespace

const QStringList& TrainingPanel::seriesKeys() {
  static const QStringList keys = {"loss", "accuracy", "tar", "lr", "samples_per_s", "grad_norm"};
  return keys;
}

TrainingPanel::TrainingPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* controls = new QHBoxLayout;
  slider_ = new QSlider(Qt::Horizontal);
  slider_->setRange(0, 99);
  slider_->setValue(60);
  slider_->setToolTip("debiased exponential moving average over the faint raw curve");
  slider_label_ = new QLabel("smoothing 0.60");
  controls->addWidget(slider_label_);
  controls->addWidget(slider_, 1);
  x_box_ = new QComboBox;
  x_box_->addItems({"step", "relative time", "wall time"});
  controls->addWidget(new QLabel("x axis"));
  controls->addWidget(x_box_);
  far_box_ = new QComboBox;
  far_box_->setToolTip("the FAR of the TAR@FAR chart");
  controls->addWidget(new QLabel("TAR@FAR"));
  controls->addWidget(far_box_);
  log_box_ = new QCheckBox("log y");
  controls->addWidget(log_box_);
  auto* save = new QPushButton("Export...");
  save->setShortcut(QKeySequence("Ctrl+E"));
  save->setToolTip("export the charts as PNG or PDF, or every point as CSV (Ctrl+E)");
  controls->addWidget(save);
  connect(log_box_, &QCheckBox::toggled, this, [this](bool on) {
    setLogY(on);
    Q_EMIT settingsChanged();
  });
  connect(x_box_, &QComboBox::currentIndexChanged, this, [this](int i) {
    setXAxis(static_cast<XAxis>(i));
    Q_EMIT settingsChanged();
  });
  connect(far_box_, &QComboBox::currentTextChanged, this, [this](const QString& f) {
    if (f.isEmpty()) return;
    showFar(f);
    Q_EMIT settingsChanged();
  });
  connect(save, &QPushButton::clicked, this, [this] {
    const QString f = saveFileName(this, "Export the curves", "curves.png",
                                   "PNG (*.png);;PDF (*.pdf);;CSV (*.csv)");
    if (f.endsWith(".pdf"))
      exportPdf(f);
    else if (f.endsWith(".csv"))
      exportCsv(f);
    else if (!f.isEmpty())
      exportPng(f, 1800, 1000);
  });
  layout->addLayout(controls);
  // Grouping: by study cell or by a configuration key's value.
  auto* grouping = new QHBoxLayout;
  group_box_ = new QComboBox;
  group_box_->addItems({"no grouping", "study cell", "config key"});
  group_box_->setToolTip(
      "draw the runs of a study cell, or of one value of a configuration key, as their mean "
      "curve with a band");
  group_key_box_ = new QComboBox;
  group_key_box_->setEditable(true);
  group_key_box_->setMinimumWidth(180);
  group_key_box_->setEnabled(false);
  group_key_box_->setToolTip("the study (study cell), or the configuration key (config key)");
  band_box_ = new QComboBox;
  band_box_->addItems({"band: std", "band: min-max"});
  band_box_->setToolTip("the band around a group's mean: -+ one standard deviation, or min to max");
  group_runs_box_ = new QCheckBox("runs");
  group_runs_box_->setChecked(true);
  group_runs_box_->setToolTip("the grouped runs themselves: faint (checked) or hidden");
  group_note_ = new QLabel;
  grouping->addWidget(new QLabel("group by"));
  grouping->addWidget(group_box_);
  grouping->addWidget(group_key_box_);
  grouping->addWidget(band_box_);
  grouping->addWidget(group_runs_box_);
  grouping->addWidget(group_note_, 1);
  layout->addLayout(grouping);
  auto apply_group = [this] {
    setGroupBy(static_cast<GroupBy>(group_box_->currentIndex()), group_key_box_->currentText());
    Q_EMIT settingsChanged();
  };
  connect(group_box_, &QComboBox::activated, this, [this, apply_group] {
    showGroupControls();
    apply_group();
  });
  connect(group_key_box_, &QComboBox::activated, this, apply_group);
  connect(group_key_box_->lineEdit(), &QLineEdit::editingFinished, this, [this, apply_group] {
    if (group_key_box_->currentText() != group_key_) apply_group();
  });
  connect(band_box_, &QComboBox::activated, this, [this](int i) {
    setBand(static_cast<Band>(i));
    Q_EMIT settingsChanged();
  });
  connect(group_runs_box_, &QCheckBox::toggled, this, [this](bool on) {
    setShowGroupedRuns(on);
    Q_EMIT settingsChanged();
  });
  auto* grid = new QGridLayout;
  for (int i = 0; i < kPlots; ++i) {
    auto* p = new QCustomPlot;
    p->setMinimumSize(240, 160);
    p->plotLayout()->insertRow(0);
    p->plotLayout()->addElement(0, 0, new QCPTextElement(p, kTitles[i]));
    p->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    p->setMouseTracking(true);
    auto* line = new QCPItemStraightLine(p);
    line->setPen(QPen(QColor(128, 128, 128), 1, Qt::DashLine));
    line->setVisible(false);
    line->setSelectable(false);
    auto* text = new QCPItemText(p);
    text->position->setType(QCPItemPosition::ptAxisRectRatio);
    text->position->setCoords(0.01, 0.02);
    text->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
    text->setTextAlignment(Qt::AlignLeft);
    text->setPadding(QMargins(4, 2, 4, 2));
    text->setVisible(false);
    text->setSelectable(false);
    connect(p, &QCustomPlot::mouseMove, this,
            [this, i](QMouseEvent* e) { showCrosshair(i, e->pos().x()); });
    p->installEventFilter(this);
    grid->addWidget(p, i / 3, i % 3);
    plots_.push_back(p);
    cross_.push_back(line);
    readout_.push_back(text);
  }
  layout->addLayout(grid, 1);
  connect(slider_, &QSlider::valueChanged, this, [this](int v) {
    setSmoothing(v / 100.0);
    Q_EMIT settingsChanged();
  });
  // The run names, by colour, on the loss chart.
  plots_[kLoss]->legend->setVisible(true);
  plots_[kLoss]->legend->setFont(QFont(font().family(), 8));
  plots_[kLoss]->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  setXAxis(XAxis::kStep);
  styleAxes();
  replot_.setInterval(33);  // at most ~30 replots a second
  connect(&replot_, &QTimer::timeout, this, &TrainingPanel::replotIfDirty);
  replot_.start();
}

TrainingPanel::Run& TrainingPanel::runInfo(const QString& run) {
  auto it = runs_.find(run);
  if (it != runs_.end()) return it->second;
  Run r;
  r.colour = seriesColour(runs_.size());
  if (group_by_ != GroupBy::kNone) unresolved_.insert(run), groups_dirty_ = true;
  return runs_.emplace(run, std::move(r)).first->second;
}

QColor TrainingPanel::colourOf(const QString& run) {
  return runInfo(run).colour;
}

TrainingPanel::Series& TrainingPanel::series(const QString& run, int plot) {
  auto key = std::make_pair(run, plot);
  auto it = series_.find(key);
  if (it != series_.end()) return it->second;
  const Run& info = runInfo(run);
  const QColor c = info.colour;
  Series s{ChartSeries(weight_, kBest[plot], kValidationPlot[plot])};
  s.raw = plots_[plot]->addGraph();
  QColor faint = c;
  faint.setAlpha(60);
  s.raw->setPen(QPen(faint, 1));
  s.raw->removeFromLegend();
  s.smooth = plots_[plot]->addGraph();
  s.smooth->setPen(QPen(c, 2));
  s.smooth->setName(run);
  s.best = plots_[plot]->addGraph();
  s.best->setLineStyle(QCPGraph::lsNone);
  s.best->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(c, 2), Qt::white, 9));
  s.best->removeFromLegend();
  for (auto* g : {s.raw, s.smooth, s.best}) g->setVisible(info.visible);
  Series& made = series_.emplace(key, std::move(s)).first->second;
  if (group_by_ != GroupBy::kNone) styleRun(run);
  return made;
}

double TrainingPanel::xOf(const QString& run, double step, double wall) const {
  switch (x_mode_) {
    case XAxis::kStep:
      return step;
    case XAxis::kRelative: {
      const auto it = runs_.find(run);
      return it == runs_.end() ? 0 : wall - it->second.t0;
    }
    case XAxis::kWall:
      return wall;
  }
  return step;
}

void TrainingPanel::append(const QString& run, int plot, double step, double wall, double y) {
  Run& info = runInfo(run);
  if (info.t0 < 0) info.t0 = wall;
  Series& s = series(run, plot);
  const double x = xOf(run, step, wall);
  const bool best_moved = s.data.append(step, wall, y, x);
  s.raw->addData(x, y);
  s.smooth->addData(x, s.data.smoothed().back());
  if (best_moved) drawBest(s);
  markDirty();
}

void TrainingPanel::drawBest(Series& s) {
  if (s.data.bestIndex() < 0) {
    s.best->data()->clear();
    return;
  }
  s.best->setData(QVector<double>{s.data.bestX()}, QVector<double>{s.data.bestValue()}, true);
}

void TrainingPanel::addHistory(const RunHistory& h) {
  for (size_t i = 0; i < h.steps.size(); ++i)
    addStep(h.name, h.steps[i], h.loss[i], h.lr[i], h.samples_per_s[i], h.grad_norm[i], h.wall[i]);
  for (const auto& v : h.validations) {
    QMap<QString, double> m;
    for (const auto& [k, x] : v.metrics) m.insert(k, x);
    addValidation(h.name, v.step, m, v.wall);
  }
}

void TrainingPanel::addStep(const QString& run, qint64 step, double loss, double lr,
                            double samples_per_s, double grad_norm, double wall) {
  if (wall <= 0) wall = nowSeconds();
  const double x = static_cast<double>(step);
  append(run, kLoss, x, wall, loss);
  append(run, kLr, x, wall, lr);
  append(run, kSamples, x, wall, samples_per_s);
  if (std::isfinite(grad_norm) && grad_norm > 0) append(run, kGrad, x, wall, grad_norm);
}

void TrainingPanel::addValidation(const QString& run, qint64 step,
                                  const QMap<QString, double>& metrics, double wall) {
  if (wall <= 0) wall = nowSeconds();
  const double x = static_cast<double>(step);
  runInfo(run).validations.emplace_back(x, wall, metrics);
  double sum = 0;
  int n = 0;
  bool rebuilt = false;
  for (auto it = metrics.begin(); it != metrics.end(); ++it) {
    if (isAccuracy(it.key())) sum += it.value(), ++n;
    const QString far = farOf(it.key());
    if (!far.isEmpty() && far_box_->findText(far) < 0) {
      far_box_->blockSignals(true);  // not the user's choice: no settingsChanged
      far_box_->addItem(far);
      const bool pick = far == "1e-03" || far_box_->count() == 1;
      if (pick) far_box_->setCurrentText(far);
      far_box_->blockSignals(false);
      if (pick) {      // the paper's operating point when reported
        showFar(far);  // this validation included
        rebuilt = true;
      }
    }
  }
  if (n > 0) append(run, kAccuracy, x, wall, sum / n);
  if (!rebuilt) addTarPoint(run, x, wall, metrics);
}

void TrainingPanel::addTarPoint(const QString& run, double step, double wall,
                                const QMap<QString, double>& m) {
  const QString far = far_box_->currentText();
  if (far.isEmpty()) return;
  double sum = 0;
  int n = 0;
  for (auto it = m.begin(); it != m.end(); ++it)
    if (farOf(it.key()) == far) sum += it.value(), ++n;
  if (n > 0) append(run, kTar, step, wall, sum / n);
}

void TrainingPanel::showFar(const QString& far) {
  if (auto* title = qobject_cast<QCPTextElement*>(plots_[kTar]->plotLayout()->element(0, 0)))
    title->setText("TAR@FAR=" + far + " (mean over sets)");
  for (const auto& [name, r] : runs_) rebuildTar(name);
}

void TrainingPanel::rebuildTar(const QString& run) {
  auto it = series_.find(std::make_pair(run, static_cast<int>(kTar)));
  if (it != series_.end()) {
    Series& s = it->second;
    s.data.clear(weight_);
    s.raw->data()->clear(), s.smooth->data()->clear(), s.best->data()->clear();
    markDirty();
  }
  for (const auto& [step, wall, m] : runs_[run].validations) addTarPoint(run, step, wall, m);
}

QString TrainingPanel::far() const {
  return far_box_->currentText();
}
QStringList TrainingPanel::farChoices() const {
  QStringList out;
  for (int i = 0; i < far_box_->count(); ++i) out << far_box_->itemText(i);
  return out;
}
void TrainingPanel::setFar(const QString& far) {
  if (far_box_->findText(far) >= 0) far_box_->setCurrentText(far);
}

void TrainingPanel::setSmoothing(double weight) {
  weight_ = weight;
  slider_label_->setText(QString("smoothing %1").arg(weight, 0, 'f', 2));
  slider_->blockSignals(true);
  slider_->setValue(static_cast<int>(std::lround(weight * 100)));
  slider_->blockSignals(false);
  rebuild();
}

void TrainingPanel::setXAxis(XAxis mode) {
  x_mode_ = mode;
  x_box_->blockSignals(true);
  x_box_->setCurrentIndex(static_cast<int>(mode));
  x_box_->blockSignals(false);
  for (auto* p : plots_) {
    if (mode == XAxis::kWall) {
      auto t = QSharedPointer<QCPAxisTickerDateTime>(new QCPAxisTickerDateTime);
      t->setDateTimeFormat("hh:mm:ss");
      p->xAxis->setTicker(t);
      p->xAxis->setLabel("wall time");
    } else if (mode == XAxis::kRelative) {
      auto t = QSharedPointer<QCPAxisTickerTime>(new QCPAxisTickerTime);
      t->setTimeFormat("%h:%m:%s");
      p->xAxis->setTicker(t);
      p->xAxis->setLabel("time since start");
    } else {
      p->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
      p->xAxis->setLabel("step");
    }
  }
  rebuild();
}

void TrainingPanel::rebuild() {
  for (auto& [key, s] : series_) {
    const QString& run = key.first;
    s.data.rebuild(weight_, [&](double step, double wall) { return xOf(run, step, wall); });
    const auto& d = s.data;
    QVector<double> x(d.x().begin(), d.x().end()), y(d.raw().begin(), d.raw().end()),
        sm(d.smoothed().begin(), d.smoothed().end());
    s.raw->setData(x, y, true);
    s.smooth->setData(x, sm, true);
    drawBest(s);
  }
  markDirty();
}

void TrainingPanel::setRunVisible(const QString& run, bool visible) {
  runInfo(run).visible = visible;
  styleRun(run);
  markDirty();
}

bool TrainingPanel::runVisible(const QString& run) const {
  const auto it = runs_.find(run);
  return it == runs_.end() || it->second.visible;
}

double TrainingPanel::best(const QString& run, const QString& key) const {
  const int plot = static_cast<int>(seriesKeys().indexOf(key));
  const auto it = series_.find(std::make_pair(run, plot));
  if (plot < 0 || it == series_.end()) return std::numeric_limits<double>::quiet_NaN();
  return it->second.data.bestValue();
}

QString TrainingPanel::readout(const QString& key, double x) const {
  const int plot = static_cast<int>(seriesKeys().indexOf(key));
  if (plot < 0) return {};
  QStringList lines = {formatX(x_mode_, x)};
  for (const auto& [k, s] : series_) {
    if (k.second != plot || s.data.empty() || !runVisible(k.first)) continue;
    const size_t i = s.data.nearest(x);
    lines << QString("%1  %2 (raw %3)")
                 .arg(k.first)
                 .arg(s.data.smoothed()[i], 0, 'g', 5)
                 .arg(s.data.raw()[i], 0, 'g', 5);
  }
  return lines.join('\n');
}

void TrainingPanel::showCrosshair(int plot, double pixel_x) {
  auto* p = plots_[plot];
  const double x = p->xAxis->pixelToCoord(pixel_x);
  cross_[plot]->point1->setCoords(x, 0);
  cross_[plot]->point2->setCoords(x, 1);
  readout_[plot]->setText(readout(seriesKeys()[plot], x));
  cross_[plot]->setVisible(true);
  readout_[plot]->setVisible(true);
  p->replot(QCustomPlot::rpQueuedReplot);
}

bool TrainingPanel::eventFilter(QObject* watched, QEvent* event) {
  if (event->type() == QEvent::Leave)
    for (size_t i = 0; i < plots_.size(); ++i)
      if (plots_[i] == watched) {
        cross_[i]->setVisible(false);
        readout_[i]->setVisible(false);
        plots_[i]->replot(QCustomPlot::rpQueuedReplot);
      }
  return QWidget::eventFilter(watched, event);
}

void TrainingPanel::replotIfDirty() {
  // Hidden (another panel in front), the charts wait: they are drawn when the panel is shown.
  if (!isVisible()) return;
  if (rescaleIfDirty())
    for (auto* p : plots_) p->replot(QCustomPlot::rpQueuedReplot);
}

void TrainingPanel::showEvent(QShowEvent* event) {
  QWidget::showEvent(event);
  rescaleIfDirty();
  for (auto* p : plots_) p->replot(QCustomPlot::rpQueuedReplot);
}

bool TrainingPanel::rescaleIfDirty() {
  if (groups_dirty_) regroup();
  if (!dirty_) return false;
  dirty_ = false;
  for (auto* p : plots_) {
    bool any = false;
    p->rescaleAxes(/*onlyVisiblePlottables=*/true);
    for (int g = 0; g < p->graphCount(); ++g) any |= p->graph(g)->visible();
    if (any && p->yAxis->scaleType() == QCPAxis::stLinear) {
      const QCPRange r = p->yAxis->range();  // a little air above and below the curves
      const double pad = r.size() > 0 ? 0.05 * r.size() : std::max(1e-3, std::abs(r.lower) * 0.05);
      p->yAxis->setRange(r.lower - pad, r.upper + pad);
    }
  }
  return true;
}

int TrainingPanel::pointCount(const QString& run, const QString& key) const {
  const int plot = static_cast<int>(seriesKeys().indexOf(key));
  const auto it = series_.find(std::make_pair(run, plot));
  return it == series_.end() ? 0 : static_cast<int>(it->second.data.size());
}

void TrainingPanel::setLogY(bool on) {
  log_y_ = on;
  log_box_->blockSignals(true);
  log_box_->setChecked(on);
  log_box_->blockSignals(false);
  for (int i = 0; i < kPlots; ++i) {  // accuracy and TAR stay linear
    if (!kLogCapable[i]) continue;
    auto* axis = plots_[i]->yAxis;
    axis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (on)
      axis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    else
      axis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  }
  dirty_ = true;
}

void TrainingPanel::setDark(bool on) {
  dark_ = on;
  styleAxes();
  dirty_ = true;
}

void TrainingPanel::styleAxes() {
  const QColor fg = plotForeground(dark_), grid = plotGrid(dark_);
  for (size_t i = 0; i < plots_.size(); ++i) {
    stylePlot(plots_[i], dark_);
    readout_[i]->setColor(fg);
    QColor box = plotBackground(dark_);
    box.setAlpha(220);
    readout_[i]->setBrush(box);
    readout_[i]->setPen(QPen(grid));
  }
}

void TrainingPanel::paintGrid(QCPPainter& painter, int width, int height) {
  if (isVisible())
    replotIfDirty();
  else
    rescaleIfDirty();
  const int cw = width / 3, ch = height / 2;
  for (int i = 0; i < kPlots; ++i) {
    painter.save();
    painter.translate((i % 3) * cw, (i / 3) * ch);
    plots_[i]->toPainter(&painter, cw, ch);
    painter.restore();
  }
  painter.end();
}

QImage TrainingPanel::render(int width, int height) {
  QImage out(width, height, QImage::Format_RGB32);
  out.fill(plotBackground(dark_));
  QCPPainter painter(&out);
  paintGrid(painter, width, height);
  return out;
}

bool TrainingPanel::exportPng(const QString& path, int width, int height) {
  // Written beside and renamed into place: an interrupted export leaves no half-written file.
  QSaveFile f(path);
  return f.open(QIODevice::WriteOnly) && render(width, height).save(&f, "PNG") && f.commit();
}

bool TrainingPanel::exportPdf(const QString& path, int width, int height) {
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly)) return false;
  {
    QPdfWriter pdf(&f);
    pdf.setResolution(72);
    pdf.setPageSize(QPageSize(QSizeF(width, height), QPageSize::Point));
    pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
    pdf.setCreator("msconv-lab");
    QCPPainter painter(&pdf);
    painter.setMode(QCPPainter::pmVectorized);
    painter.setMode(QCPPainter::pmNoCaching);
    paintGrid(painter, width, height);
  }
  return f.commit();
}

bool TrainingPanel::exportCsv(const QString& path) const {
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) return false;
  QTextStream out(&f);
  out.setRealNumberPrecision(10);
  out << "run,series,step,wall,value\n";
  for (const auto& [key, s] : series_) {
    const auto& d = s.data;
    for (size_t i = 0; i < d.size(); ++i)
      out << key.first << ","
          << (key.second == kTar ? "tar@far=" + far() : seriesKeys()[key.second]) << ","
          << qint64(d.steps()[i]) << "," << qint64(std::llround(d.walls()[i] * 1000)) / 1000.0
          << "," << d.raw()[i] << "\n";
  }
  // Grouped: each group's mean and band, x in the axis' units (wall left empty).
  for (const auto& [key, g] : currentGroups()) {
    const QString series = key.second == kTar ? "tar@far=" + far() : seriesKeys()[key.second];
    const QString group = "\"group " + QString(key.first).replace('"', "'") + "\",";
    const std::pair<const char*, const std::vector<double>*> parts[] = {
        {":mean", &g.mean}, {":lower", &g.lower}, {":upper", &g.upper}};
    for (const auto& [suffix, ys] : parts)
      for (size_t i = 0; i < g.x.size(); ++i)
        out << group << series << suffix << "," << g.x[i] << ",," << (*ys)[i] << "\n";
  }
  out.flush();
  return f.commit();
}

// ---- Grouping ----------------------------------------------------------------------------------

namespace {

// The value of a dotted key in a run's stored configuration (nested objects), as --set writes it;
// "" when absent.
QString configValue(const std::string& config_json, const QString& key) {
  QJsonValue v = QJsonDocument::fromJson(QByteArray::fromStdString(config_json)).object();
  for (const auto& part : key.split('.')) {
    if (!v.isObject()) return {};
    v = v.toObject().value(part);
  }
  if (v.isString()) return v.toString();
  if (v.isBool()) return v.toBool() ? "true" : "false";
  if (v.isDouble()) return QString::number(v.toDouble(), 'g', 12);
  if (v.isArray()) {
    QStringList parts;
    for (const auto& x : v.toArray()) parts << x.toVariant().toString();
    return parts.join(',');
  }
  return {};
}

// y of a curve (x ascending) at x, linearly interpolated; x within the curve's range.
double interpolate(const std::vector<double>& xs, const std::vector<double>& ys, double x) {
  const auto it = std::lower_bound(xs.begin(), xs.end(), x);
  if (it == xs.end()) return ys.back();
  const size_t i = static_cast<size_t>(it - xs.begin());
  if (*it == x || i == 0) return ys[i];
  const double t = (x - xs[i - 1]) / (xs[i] - xs[i - 1]);
  return ys[i - 1] + t * (ys[i] - ys[i - 1]);
}

}  // namespace

TrainingPanel::GroupCurve TrainingPanel::aggregate(
    const std::vector<std::pair<std::vector<double>, std::vector<double>>>& curves, Band band) {
  GroupCurve out;
  double lo = -std::numeric_limits<double>::infinity(), hi = -lo;
  std::vector<const std::pair<std::vector<double>, std::vector<double>>*> used;
  for (const auto& c : curves) {
    if (c.first.empty() || c.first.size() != c.second.size()) continue;
    lo = std::max(lo, c.first.front());
    hi = std::min(hi, c.first.back());
    used.push_back(&c);
  }
  if (used.empty() || lo > hi) return out;
  out.runs = static_cast<int>(used.size());
  for (const auto* c : used)
    for (double x : c->first)
      if (x >= lo && x <= hi) out.x.push_back(x);
  std::sort(out.x.begin(), out.x.end());
  out.x.erase(std::unique(out.x.begin(), out.x.end()), out.x.end());
  std::vector<double> v(used.size());
  for (double x : out.x) {
    double sum = 0;
    for (size_t i = 0; i < used.size(); ++i)
      sum += v[i] = interpolate(used[i]->first, used[i]->second, x);
    const double mean = sum / static_cast<double>(v.size());
    out.mean.push_back(mean);
    if (band == Band::kMinMax) {
      out.lower.push_back(*std::min_element(v.begin(), v.end()));
      out.upper.push_back(*std::max_element(v.begin(), v.end()));
    } else {
      double ss = 0;
      for (double y : v) ss += (y - mean) * (y - mean);
      const double sd = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0.0;
      out.lower.push_back(mean - sd);
      out.upper.push_back(mean + sd);
    }
  }
  return out;
}

void TrainingPanel::setWorkspace(const QString& workspace) {
  workspace_ = workspace;
  if (group_by_ != GroupBy::kNone) setGroupBy(group_by_, group_key_);
}

void TrainingPanel::showGroupControls() {
  const auto mode = static_cast<GroupBy>(group_box_->currentIndex());
  const QString current = group_key_box_->currentText();
  group_key_box_->blockSignals(true);
  group_key_box_->clear();
  if (mode == GroupBy::kStudyCell && !workspace_.isEmpty()) {
    try {
      for (const auto& n : study::studyNames(workspace::Workspace(workspace_.toStdString())))
        group_key_box_->addItem(QString::fromStdString(n));
    } catch (const std::exception&) {
    }
  } else if (mode == GroupBy::kConfigKey) {
    for (const auto& [k, help] : config::Config::keys()) {
      group_key_box_->addItem(QString::fromStdString(k));
      group_key_box_->setItemData(group_key_box_->count() - 1, QString::fromStdString(help),
                                  Qt::ToolTipRole);
    }
    const int op = group_key_box_->findText("model.op");
    if (op >= 0) group_key_box_->setCurrentIndex(op);
  }
  if (!current.isEmpty() && group_key_box_->findText(current) >= 0)
    group_key_box_->setCurrentText(current);
  group_key_box_->setEnabled(mode != GroupBy::kNone);
  group_key_box_->blockSignals(false);
}

void TrainingPanel::setGroupBy(GroupBy mode, const QString& key) {
  group_by_ = mode;
  group_key_ = mode == GroupBy::kNone ? QString() : key.trimmed();
  group_box_->blockSignals(true);
  group_box_->setCurrentIndex(static_cast<int>(mode));
  group_box_->blockSignals(false);
  showGroupControls();
  group_key_box_->blockSignals(true);
  group_key_box_->setCurrentText(group_key_);
  group_key_box_->blockSignals(false);
  group_colours_.clear();
  study_cells_.clear();
  resolveGroups(true);
  for (const auto& [run, info] : runs_) styleRun(run);
  markDirty();
}

void TrainingPanel::resolveGroups(bool all) {
  std::set<QString> todo;
  if (all) {
    group_of_.clear();
    for (const auto& [name, info] : runs_) todo.insert(name);
  } else {
    todo.swap(unresolved_);
  }
  unresolved_.clear();
  if (group_by_ == GroupBy::kNone) {
    group_note_->clear();
    return;
  }
  try {
    if (group_key_.isEmpty())
      throw Error(group_by_ == GroupBy::kStudyCell ? "name a study" : "name a configuration key");
    if (workspace_.isEmpty()) throw Error("no workspace to look the runs up in");
    const workspace::Workspace ws(workspace_.toStdString());
    if (group_by_ == GroupBy::kStudyCell) {
      if (study_cells_.empty()) {
        const auto s = study::loadStudy(ws, group_key_.toStdString());
        for (const auto& c : study::expand(s))
          for (auto seed : s.seeds)
            study_cells_[QString::fromStdString(study::runName(s, c, seed))] =
                QString::fromStdString(c.id);
      }
      for (const auto& run : todo)
        if (const auto it = study_cells_.find(run); it != study_cells_.end())
          group_of_[run] = it->second;
    } else if (!todo.empty()) {
      const auto db = ws.openStore();
      for (const auto& run : todo)
        if (const auto row = db->findRun(run.toStdString())) {
          const QString value = configValue(row->config, group_key_);
          if (!value.isEmpty()) group_of_[run] = group_key_ + "=" + value;
        }
    }
    std::set<QString> groups;
    for (const auto& [run, g] : group_of_) groups.insert(g);
    group_note_->setText(
        QString("%1 group(s) of %2 run(s)").arg(groups.size()).arg(group_of_.size()));
    group_note_->setToolTip({});
  } catch (const std::exception& e) {
    group_note_->setText(QString::fromStdString(e.what()).left(160));
    group_note_->setToolTip(e.what());
  }
}

QString TrainingPanel::groupOf(const QString& run) const {
  if (group_by_ == GroupBy::kNone) return {};
  const auto it = group_of_.find(run);
  return it == group_of_.end() ? QString() : it->second;
}

QStringList TrainingPanel::groups() const {
  QStringList out;
  for (const auto& [run, g] : group_of_)
    if (runs_.count(run) && !out.contains(g)) out << g;
  out.sort();
  return out;
}

QString TrainingPanel::groupNote() const {
  return group_note_->text();
}

QColor TrainingPanel::groupColour(const QString& group) {
  auto it = group_colours_.find(group);
  if (it == group_colours_.end())
    it = group_colours_.emplace(group, seriesColour(group_colours_.size())).first;
  return it->second;
}

void TrainingPanel::setBand(Band band) {
  band_ = band;
  band_box_->blockSignals(true);
  band_box_->setCurrentIndex(static_cast<int>(band));
  band_box_->blockSignals(false);
  markDirty();
}

void TrainingPanel::setShowGroupedRuns(bool on) {
  show_grouped_runs_ = on;
  group_runs_box_->blockSignals(true);
  group_runs_box_->setChecked(on);
  group_runs_box_->blockSignals(false);
  for (const auto& [run, info] : runs_) styleRun(run);
  markDirty();
}

// A run's graphs as the grouping wants them: its own colour with the faint raw curve and the best
// marker (no group), or faint in its group's colour (or hidden) without either.
void TrainingPanel::styleRun(const QString& run) {
  const QString group = groupOf(run);
  const bool visible = runVisible(run);
  const QColor own = runInfo(run).colour;
  const QColor tint = group.isEmpty() ? own : groupColour(group);
  for (auto& [key, s] : series_) {
    if (key.first != run) continue;
    if (group.isEmpty()) {
      QColor faint = own;
      faint.setAlpha(60);
      s.raw->setPen(QPen(faint, 1));
      s.smooth->setPen(QPen(own, 2));
      s.smooth->addToLegend();
      for (auto* g : {s.raw, s.smooth, s.best}) g->setVisible(visible);
    } else {
      QColor faint = tint;
      faint.setAlpha(70);
      s.smooth->setPen(QPen(faint, 1));
      s.smooth->removeFromLegend();
      s.raw->setVisible(false);
      s.best->setVisible(false);
      s.smooth->setVisible(visible && show_grouped_runs_);
    }
  }
}

std::map<std::pair<QString, int>, TrainingPanel::GroupCurve> TrainingPanel::currentGroups() const {
  // The visible runs' smoothed curves, by group and chart.
  std::map<std::pair<QString, int>,
           std::vector<std::pair<std::vector<double>, std::vector<double>>>>
      members;
  if (group_by_ != GroupBy::kNone)
    for (const auto& [key, s] : series_) {
      const QString g = groupOf(key.first);
      if (g.isEmpty() || !runVisible(key.first) || s.data.empty()) continue;
      members[{g, key.second}].emplace_back(s.data.x(), s.data.smoothed());
    }
  std::map<std::pair<QString, int>, GroupCurve> out;
  for (const auto& [key, curves] : members) out[key] = aggregate(curves, band_);
  return out;
}

void TrainingPanel::regroup() {
  groups_dirty_ = false;
  dirty_ = true;
  if (group_by_ != GroupBy::kNone && !unresolved_.empty()) {
    const std::set<QString> fresh = unresolved_;
    resolveGroups(false);
    for (const auto& run : fresh) styleRun(run);
  }
  const auto curves = currentGroups();
  for (auto it = group_graphs_.begin(); it != group_graphs_.end();) {
    if (curves.count(it->first)) {
      ++it;
      continue;
    }
    auto* p = plots_[it->first.second];
    for (auto* g : {it->second.mean, it->second.lower, it->second.upper}) p->removeGraph(g);
    it = group_graphs_.erase(it);
  }
  for (const auto& [key, curve] : curves) {
    auto it = group_graphs_.find(key);
    if (it == group_graphs_.end()) {
      auto* p = plots_[key.second];
      const QColor c = groupColour(key.first);
      QColor edge = c, fill = c;
      edge.setAlpha(110);
      fill.setAlpha(45);
      GroupGraphs g;
      g.upper = p->addGraph();
      g.lower = p->addGraph();
      g.mean = p->addGraph();
      for (auto* x : {g.upper, g.lower}) {
        x->setPen(QPen(edge, 1));
        x->removeFromLegend();
      }
      g.lower->setBrush(fill);
      g.lower->setChannelFillGraph(g.upper);
      g.mean->setPen(QPen(c, 2.5));
      if (kValidationPlot[key.second])  // a few points (one per validation): each one marked
        g.mean->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, c, 6));
      it = group_graphs_.emplace(key, g).first;
    }
    GroupGraphs& g = it->second;
    const QVector<double> x(curve.x.begin(), curve.x.end());
    g.mean->setData(x, QVector<double>(curve.mean.begin(), curve.mean.end()), true);
    g.lower->setData(x, QVector<double>(curve.lower.begin(), curve.lower.end()), true);
    g.upper->setData(x, QVector<double>(curve.upper.begin(), curve.upper.end()), true);
    g.mean->setName(QString("%1 (mean of %2)").arg(key.first).arg(curve.runs));
    g.runs = curve.runs;
  }
}

TrainingPanel::GroupCurve TrainingPanel::groupCurve(const QString& group, const QString& key) {
  if (groups_dirty_) regroup();
  GroupCurve out;
  const int plot = static_cast<int>(seriesKeys().indexOf(key));
  const auto it = group_graphs_.find(std::make_pair(group, plot));
  if (plot < 0 || it == group_graphs_.end()) return out;
  const GroupGraphs& g = it->second;
  for (auto p = g.mean->data()->constBegin(); p != g.mean->data()->constEnd(); ++p)
    out.x.push_back(p->key), out.mean.push_back(p->value);
  for (auto p = g.lower->data()->constBegin(); p != g.lower->data()->constEnd(); ++p)
    out.lower.push_back(p->value);
  for (auto p = g.upper->data()->constBegin(); p != g.upper->data()->constEnd(); ++p)
    out.upper.push_back(p->value);
  out.runs = g.runs;
  return out;
}

}  // namespace msconv::ui
