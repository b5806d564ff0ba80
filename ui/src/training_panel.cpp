#include "msconv/ui/training_panel.h"

#include <QCheckBox>
#include <QFile>
#include <QFileDialog>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSlider>
#include <QTextStream>
#include <QVBoxLayout>
#include "qcustomplot_include.h"

#include "msconv/ui/smoothing.h"

namespace msconv::ui {
namespace {

const char* kTitles[] = {"loss", "learning rate", "samples/s", "validation accuracy"};
const char* kKeys[] = {"loss", "lr", "samples_per_s", "accuracy"};

QColor runColour(int i) {
  static const QColor c[] = {QColor(31, 119, 180), QColor(255, 127, 14),  QColor(44, 160, 44),
                             QColor(214, 39, 40),  QColor(148, 103, 189), QColor(140, 86, 75)};
  return c[i % 6];
}

}  // namespace

TrainingPanel::TrainingPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* controls = new QHBoxLayout;
  slider_ = new QSlider(Qt::Horizontal);
  slider_->setRange(0, 99);
  slider_->setValue(60);
  slider_label_ = new QLabel("smoothing 0.60");
  controls->addWidget(slider_label_);
  controls->addWidget(slider_, 1);
  auto* log_y = new QCheckBox("log y");
  controls->addWidget(log_y);
  auto* save = new QPushButton("Export...");
  controls->addWidget(save);
  connect(log_y, &QCheckBox::toggled, this, &TrainingPanel::setLogY);
  connect(save, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, "Export the curves", "curves.png",
                                                   "PNG (*.png);;PDF (*.pdf);;CSV (*.csv)");
    if (f.endsWith(".pdf"))
      exportPdf(f);
    else if (f.endsWith(".csv"))
      exportCsv(f);
    else if (!f.isEmpty())
      exportPng(f, 1600, 1000);
  });
  layout->addLayout(controls);
  auto* grid = new QGridLayout;
  for (int i = 0; i < 4; ++i) {
    auto* p = new QCustomPlot;
    p->setMinimumSize(240, 160);
    p->plotLayout()->insertRow(0);
    p->plotLayout()->addElement(0, 0, new QCPTextElement(p, kTitles[i]));
    p->xAxis->setLabel("step");
    p->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    grid->addWidget(p, i / 2, i % 2);
    plots_.push_back(p);
  }
  layout->addLayout(grid, 1);
  connect(slider_, &QSlider::valueChanged, this, [this](int v) { setSmoothing(v / 100.0); });
  replot_.setInterval(33);  // at most ~30 replots a second
  connect(&replot_, &QTimer::timeout, this, &TrainingPanel::replotIfDirty);
  replot_.start();
}

TrainingPanel::Series& TrainingPanel::series(const QString& run, int plot) {
  auto key = std::make_pair(run, plot);
  auto it = series_.find(key);
  if (it != series_.end()) return it->second;
  if (!colour_index_.count(run)) {
    const int n = static_cast<int>(colour_index_.size());
    colour_index_[run] = n;
  }
  const QColor c = runColour(colour_index_[run]);
  Series s;
  s.smoother.reset(weight_);
  s.raw = plots_[plot]->addGraph();
  QColor faint = c;
  faint.setAlpha(60);
  s.raw->setPen(QPen(faint, 1));
  s.raw->removeFromLegend();
  s.smooth = plots_[plot]->addGraph();
  s.smooth->setPen(QPen(c, 2));
  s.smooth->setName(run);
  return series_.emplace(key, std::move(s)).first->second;
}

void TrainingPanel::append(const QString& run, int plot, double x, double y) {
  Series& s = series(run, plot);
  s.x.push_back(x);
  s.y.push_back(y);
  s.raw->addData(x, y);
  s.smooth->addData(x, s.smoother.add(y));  // the debiased EMA continues: O(1) per point
  dirty_ = true;
}

void TrainingPanel::addStep(const QString& run, qint64 step, double loss, double lr,
                            double samples_per_s) {
  append(run, 0, static_cast<double>(step), loss);
  append(run, 1, static_cast<double>(step), lr);
  append(run, 2, static_cast<double>(step), samples_per_s);
}

void TrainingPanel::addValidation(const QString& run, qint64 step,
                                  const QMap<QString, double>& metrics) {
  double sum = 0;
  int n = 0;
  for (auto it = metrics.begin(); it != metrics.end(); ++it)
    if (it.key().endsWith("/accuracy")) sum += it.value(), ++n;
  if (n > 0) append(run, 3, static_cast<double>(step), sum / n);
}

void TrainingPanel::setSmoothing(double weight) {
  weight_ = weight;
  slider_label_->setText(QString("smoothing %1").arg(weight, 0, 'f', 2));
  rebuildSmoothed();
}

void TrainingPanel::rebuildSmoothed() {
  for (auto& [key, s] : series_) {
    s.smoother.reset(weight_);
    std::vector<double> sm;
    for (double v : s.y) sm.push_back(s.smoother.add(v));
    QVector<double> x(s.x.begin(), s.x.end()), y(sm.begin(), sm.end());
    s.smooth->setData(x, y, true);
  }
  dirty_ = true;
}

void TrainingPanel::replotIfDirty() {
  if (!dirty_) return;
  dirty_ = false;
  for (auto* p : plots_) {
    p->rescaleAxes();
    p->replot(QCustomPlot::rpQueuedReplot);
  }
}

int TrainingPanel::pointCount(const QString& run, const QString& key) const {
  for (int i = 0; i < 4; ++i)
    if (key == kKeys[i]) {
      const auto it = series_.find(std::make_pair(run, i));
      return it == series_.end() ? 0 : static_cast<int>(it->second.x.size());
    }
  return 0;
}

bool TrainingPanel::exportPng(const QString& path, int width, int height) {
  replotIfDirty();
  return plots_[0]->savePng(path, width, height);
}

bool TrainingPanel::exportPdf(const QString& path) {
  replotIfDirty();
  return plots_[0]->savePdf(path);
}

void TrainingPanel::setLogY(bool on) {
  for (int i = 0; i < 3; ++i) {  // accuracy stays linear
    auto* axis = plots_[i]->yAxis;
    axis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (on)
      axis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    else
      axis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  }
  dirty_ = true;
}

bool TrainingPanel::exportCsv(const QString& path) const {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) return false;
  QTextStream out(&f);
  out << "run,series,step,value\n";
  for (const auto& [key, s] : series_)
    for (size_t i = 0; i < s.x.size(); ++i)
      out << key.first << "," << kKeys[key.second] << "," << s.x[i] << "," << s.y[i] << "\n";
  return true;
}

}  // namespace msconv::ui
