#include "msconv/ui/eval_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollArea>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QTableWidget>
#include <QTextStream>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <cmath>
#include <initializer_list>
#include <map>

#include <QTabWidget>
#include <QThread>

#include "msconv/eval/det.h"
#include "msconv/eval/metric_name.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/engine.h"
#include "msconv/ui/failures_view.h"
#include "plot_style.h"
#include "qcustomplot_include.h"

namespace msconv::ui {

void setupDetPlot(QCustomPlot* p) {
  QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
  const std::pair<double, const char*> at[] = {{1e-6, "0.0001%"}, {1e-5, "0.001%"}, {1e-4, "0.01%"},
                                               {1e-3, "0.1%"},    {1e-2, "1%"},     {0.05, "5%"},
                                               {0.2, "20%"},      {0.5, "50%"},     {0.8, "80%"},
                                               {0.95, "95%"},     {0.99, "99%"}};
  for (const auto& [prob, label] : at) ticks->addTick(eval::normalDeviate(prob), label);
  p->xAxis->setTicker(ticks);
  p->yAxis->setTicker(ticks);
  p->xAxis->setLabel("FMR (false match rate)");
  p->yAxis->setLabel("FNMR (false non-match rate)");
  p->legend->setVisible(true);
  p->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  // FMR = FNMR: the EER is where a curve crosses this line.
  auto* eer = new QCPItemStraightLine(p);
  eer->point1->setCoords(0, 0);
  eer->point2->setCoords(1, 1);
  eer->setPen(QPen(QColor(150, 150, 150), 1, Qt::DashLine));
  p->xAxis->setRange(eval::normalDeviate(1e-4), eval::normalDeviate(0.5));
  p->yAxis->setRange(eval::normalDeviate(1e-3), eval::normalDeviate(0.95));
}

void addDetCurve(QCustomPlot* p, const QString& name, const QColor& colour,
                 const std::vector<double>& fmr, const std::vector<double>& fnmr) {
  auto* g = p->addGraph();
  g->setName(name);
  g->setPen(QPen(colour, 2));
  QVector<double> x, y;
  for (size_t i = 0; i < fmr.size() && i < fnmr.size(); ++i)
    if (fmr[i] > 0 && fmr[i] < 1 && fnmr[i] > 0 && fnmr[i] < 1)
      x << eval::normalDeviate(fmr[i]), y << eval::normalDeviate(fnmr[i]);
  g->setData(x, y, true);
  // The axes: every curve, within 0.0001 % .. 99 %, a margin around.
  double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
  for (int i = 0; i < p->graphCount(); ++i)
    for (auto it = p->graph(i)->data()->constBegin(); it != p->graph(i)->data()->constEnd(); ++it) {
      x0 = std::min(x0, it->key), x1 = std::max(x1, it->key);
      y0 = std::min(y0, it->value), y1 = std::max(y1, it->value);
    }
  if (x0 > x1 || y0 > y1) return;
  const double lo = eval::normalDeviate(1e-6), hi = eval::normalDeviate(0.99);
  p->xAxis->setRange(std::max(lo, x0 - 0.3), std::min(hi, x1 + 0.3));
  p->yAxis->setRange(std::max(lo, y0 - 0.3), std::min(hi, y1 + 0.3));
}

void drawScoreHistogram(QCustomPlot* p, const eval::ScoreHistogram& h, const QString& title) {
  p->clearGraphs();
  p->clearItems();
  const size_t bins = h.genuine.size();
  if (bins == 0 || h.impostor.size() != bins) return;
  int64_t n_gen = 0, n_imp = 0;
  for (size_t i = 0; i < bins; ++i) n_gen += h.genuine[i], n_imp += h.impostor[i];
  const double width = (h.hi - h.lo) / static_cast<double>(bins);
  // Each class as the fraction of its pairs per bin (the two classes differ in size).
  auto curve = [&](const std::vector<int64_t>& counts, int64_t total, const QString& name,
                   const QColor& colour) {
    auto* g = p->addGraph();
    g->setName(name);
    g->setPen(QPen(colour, 2));
    QColor fill = colour;
    fill.setAlpha(50);
    g->setBrush(fill);
    g->setLineStyle(QCPGraph::lsStepLeft);
    QVector<double> x, y;
    for (size_t i = 0; i < bins; ++i) {
      x << h.lo + width * static_cast<double>(i);
      y << (total > 0 ? static_cast<double>(counts[i]) / static_cast<double>(total) : 0.0);
    }
    x << h.hi;
    y << (y.isEmpty() ? 0.0 : y.back());
    g->setData(x, y, true);
  };
  curve(h.genuine, n_gen, QString("genuine (%1)").arg(n_gen), seriesColour(2));
  curve(h.impostor, n_imp, QString("impostor (%1)").arg(n_imp), seriesColour(3));
  p->rescaleAxes();
  p->yAxis->setRangeLower(0);
  auto* line = new QCPItemStraightLine(p);
  line->point1->setCoords(h.threshold, 0);
  line->point2->setCoords(h.threshold, 1);
  line->setPen(QPen(QColor(120, 120, 120), 2, Qt::DashLine));
  auto* text = new QCPItemText(p);
  text->setPositionAlignment(Qt::AlignTop | Qt::AlignLeft);
  text->position->setType(QCPItemPosition::ptAxisRectRatio);
  text->position->setCoords(0.02, 0.02);
  text->setText(QString("%1\nthreshold %2 at FAR %3")
                    .arg(title)
                    .arg(h.threshold, 0, 'f', 4)
                    .arg(h.far, 0, 'g', 3));
  text->setColor(p->xAxis->labelColor());
  p->xAxis->setLabel("score (cosine similarity)");
  p->yAxis->setLabel("fraction of pairs");
  p->legend->setVisible(true);
}

EvalPanel::EvalPanel(QString workspace, QWidget* parent)
    : QWidget(parent), workspace_(std::move(workspace)) {
  qRegisterMetaType<std::vector<SetEvaluation>>("std::vector<SetEvaluation>");
  auto* layout = new QVBoxLayout(this);
  auto* row = new QHBoxLayout;
  checkpoint_ = new QComboBox;
  checkpoint_->setMinimumWidth(320);
  checkpoint_->setToolTip("the runs' best (or last) checkpoints, and any opened with Open...");
  auto* open = new QPushButton("Open...");
  open->setToolTip("evaluate a checkpoint file from anywhere");
  bins_ = new QLineEdit;
  bins_->setPlaceholderText(
      ".bin pair sets or IJB-B/C folders, separated by spaces (empty: the run's validation sets)");
  auto* add_set = new QPushButton("Add set...");
  run_ = new QPushButton("Evaluate");
  run_all_ = new QPushButton("Evaluate all");
  run_all_->setToolTip("every listed checkpoint, one after another");
  row->addWidget(new QLabel("checkpoint"));
  row->addWidget(checkpoint_, 1);
  row->addWidget(open);
  row->addWidget(bins_, 2);
  row->addWidget(add_set);
  row->addWidget(run_);
  row->addWidget(run_all_);
  layout->addLayout(row);
  message_ = new QLabel;
  message_->setStyleSheet("color: #d33;");
  message_->setWordWrap(true);
  layout->addWidget(message_);
  auto* progress_row = new QHBoxLayout;
  progress_ = new QProgressBar;
  progress_->setObjectName("evaluation_progress");
  progress_->setFormat("%v / %m");
  progress_label_ = new QLabel;
  progress_label_->setObjectName("evaluation_eta");
  cancel_ = new QPushButton("Cancel");
  cancel_->setObjectName("evaluation_cancel");
  cancel_->setToolTip("stops the evaluation after the set in progress");
  progress_row->addWidget(progress_, 1);
  progress_row->addWidget(progress_label_);
  progress_row->addWidget(cancel_);
  layout->addLayout(progress_row);
  for (QWidget* w : std::initializer_list<QWidget*>{progress_, progress_label_, cancel_})
    w->setVisible(false);
  connect(cancel_, &QPushButton::clicked, this, &EvalPanel::cancel);
  connect(this, &EvalPanel::progressed, this, [this](int done, int total) {
    units_done_ = done;
    progress_->setRange(0, total);
    progress_->setValue(done);
    if (cancelled_ && *cancelled_) return;
    const double per = done > 0 ? clock_.elapsed() / 1000.0 / done : 0;
    progress_label_->setText(done > 0 ? QString("%1 of %2 done, about %3 s left")
                                            .arg(done)
                                            .arg(total)
                                            .arg(static_cast<qint64>(per * (total - done) + 0.5))
                                      : QString("%1 to evaluate").arg(total));
  });
  // Inside one set (a large .bin, an IJB folder): its images, and the ETA of the whole run from
  // the fraction done.
  connect(this, &EvalPanel::setProgressed, this,
          [this](const QString& set, qint64 done, qint64 total) {
            if ((cancelled_ && *cancelled_) || total <= 0 || units_ <= 0) return;
            const double fraction =
                (units_done_ + static_cast<double>(done) / static_cast<double>(total)) / units_;
            const double elapsed = clock_.elapsed() / 1000.0;
            const qint64 left =
                fraction > 0 ? static_cast<qint64>(elapsed * (1 - fraction) / fraction + 0.5) : 0;
            progress_label_->setText(QString("%1: %2 of %3 images, about %4 s left")
                                         .arg(QFileInfo(set).fileName())
                                         .arg(done)
                                         .arg(total)
                                         .arg(left));
          });
  tabs_ = new QTabWidget;
  tabs_->setObjectName("evaluation_tabs");
  auto* results = new QWidget;
  auto* split = new QHBoxLayout(results);
  auto* tables = new QVBoxLayout;
  table_ = new QTableWidget(0, 10);
  table_->setObjectName("verification");
  table_->setHorizontalHeaderLabels({"model", "set", "pairs", "accuracy %", "std %", "VAL@1e-3 %",
                                     "XNorm", "AUC %", "EER %", "EER threshold"});
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setSortingEnabled(true);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  tables->addWidget(new QLabel("Verification"));
  tables->addWidget(table_, 1);
  tar_table_ = new QTableWidget(0, 2);
  tar_table_->setObjectName("tar_at_far");
  tar_table_->setHorizontalHeaderLabels({"model", "set"});
  tar_table_->setSortingEnabled(true);
  tar_table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  tables->addWidget(new QLabel("TAR@FAR %"));
  tables->addWidget(tar_table_, 1);
  split->addLayout(tables, 1);
  roc_ = new QCustomPlot;
  roc_->setObjectName("roc");
  roc_->setMinimumSize(360, 300);
  setupRocPlot(roc_);
  roc_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  det_ = new QCustomPlot;
  det_->setObjectName("det");
  det_->setMinimumSize(360, 300);
  setupDetPlot(det_);
  det_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  auto* scores = new QWidget;
  auto* scores_layout = new QVBoxLayout(scores);
  auto* scores_row = new QHBoxLayout;
  histogram_of_ = new QComboBox;
  histogram_of_->setObjectName("histogram_of");
  histogram_far_ = new QComboBox;
  histogram_far_->setObjectName("histogram_far");
  histogram_far_->setEditable(true);
  for (const char* far : {"1e-1", "1e-2", "1e-3", "1e-4", "1e-5", "1e-6"})
    histogram_far_->addItem(far);
  histogram_far_->setCurrentText("1e-3");
  histogram_far_->setToolTip("the FAR whose threshold is marked");
  scores_row->addWidget(new QLabel("scores of"));
  scores_row->addWidget(histogram_of_, 1);
  scores_row->addWidget(new QLabel("threshold at FAR"));
  scores_row->addWidget(histogram_far_);
  scores_layout->addLayout(scores_row);
  histogram_ = new QCustomPlot;
  histogram_->setObjectName("histogram");
  histogram_->setMinimumSize(360, 260);
  scores_layout->addWidget(histogram_, 1);
  auto* curves = new QTabWidget;
  curves->setObjectName("curves");
  curves->addTab(roc_, "ROC");
  curves->addTab(det_, "DET");
  curves->addTab(scores, "Scores");
  split->addWidget(curves, 1);
  tabs_->addTab(results, "Results");
  failures_ = new FailuresView;
  tabs_->addTab(failures_, "Failures");
  layout->addWidget(tabs_, 1);
  auto redraw = [this] {
    bool ok = false;
    const double far = histogram_far_->currentText().toDouble(&ok);
    if (ok && far > 0 && far <= 1) showHistogram(histogram_of_->currentIndex(), far);
  };
  connect(histogram_of_, &QComboBox::currentIndexChanged, this, redraw);
  connect(histogram_far_, &QComboBox::currentTextChanged, this, redraw);
  connect(run_, &QPushButton::clicked, this, &EvalPanel::evaluate);
  connect(run_all_, &QPushButton::clicked, this, &EvalPanel::evaluateAll);
  connect(this, &EvalPanel::allEvaluated, this, [this] {
    run_->setEnabled(true);
    run_all_->setEnabled(true);
    for (QWidget* w : std::initializer_list<QWidget*>{progress_, progress_label_, cancel_})
      w->setVisible(false);
  });
  connect(open, &QPushButton::clicked, this, [this] {
    const QString f =
        openFileName(this, "Model", workspace_,
                     "Models (*.ckpt *.pt *.onnx);;ONNX models (*.onnx);;All files (*)");
    if (!f.isEmpty()) addCheckpoint(f);
  });
  connect(add_set, &QPushButton::clicked, this, [this] {
    const QString f = openFileName(this, "Pair set", {}, "Pair sets (*.bin)");
    if (!f.isEmpty()) bins_->setText((bins_->text() + " " + f).trimmed());
  });
  connect(this, &EvalPanel::evaluated, this, &EvalPanel::show, Qt::QueuedConnection);
  connect(this, &EvalPanel::evaluationFailed, this, &EvalPanel::fail, Qt::QueuedConnection);
  setDark(false);
  refresh();
}

EvalPanel::~EvalPanel() {
  if (worker_) {  // the panel outlives its worker: stop it after the set in progress, wait
    if (cancelled_) *cancelled_ = true;
    worker_->disconnect(this);
    worker_->wait();
    delete worker_;
  }
}

void EvalPanel::fail(const QString& m) {
  message_->setText(m);
  showWarning(this, "Evaluation", m);
}

void EvalPanel::refresh() {
  const QString current = checkpoint_->currentData().toString();
  QStringList extra;  // files opened with Open... stay
  for (int i = 0; i < checkpoint_->count(); ++i)
    if (checkpoint_->itemText(i).startsWith("file: ")) extra << checkpoint_->itemData(i).toString();
  checkpoint_->clear();
  try {
    for (const auto& [name, ck] : runCheckpoints(workspace_)) checkpoint_->addItem(name, ck);
  } catch (const std::exception& e) {
    message_->setText(e.what());
  }
  for (const auto& f : extra) checkpoint_->addItem("file: " + QFileInfo(f).fileName(), f);
  const int at = checkpoint_->findData(current);
  if (at >= 0) checkpoint_->setCurrentIndex(at);
}

bool EvalPanel::selectRun(const QString& run) {
  const int at = checkpoint_->findText(run);
  if (at >= 0) checkpoint_->setCurrentIndex(at);
  return at >= 0;
}

bool EvalPanel::addCheckpoint(const QString& path) {
  try {
    operatorLayers(path);  // loads it: a foreign or corrupt file fails here, with its name
  } catch (const std::exception& e) {
    fail(e.what());
    return false;
  }
  checkpoint_->addItem("file: " + QFileInfo(path).fileName(), path);
  checkpoint_->setCurrentIndex(checkpoint_->count() - 1);
  message_->clear();
  return true;
}

void EvalPanel::evaluate() {
  if (checkpoint_->currentIndex() < 0) {
    Q_EMIT evaluationFailed("no checkpoint: train a run first, or open a checkpoint file");
    return;
  }
  start({{checkpoint_->currentText(), checkpoint_->currentData().toString()}});
}

void EvalPanel::evaluateAll() {
  std::vector<std::pair<QString, QString>> all;
  for (int i = 0; i < checkpoint_->count(); ++i)
    all.emplace_back(checkpoint_->itemText(i), checkpoint_->itemData(i).toString());
  if (all.empty()) {
    Q_EMIT evaluationFailed("no checkpoint: train a run first, or open a checkpoint file");
    return;
  }
  start(all);
}

void EvalPanel::start(const std::vector<std::pair<QString, QString>>& checkpoints) {
  if (worker_) {
    message_->setText("an evaluation is running; wait for it to finish");
    return;
  }
  message_->clear();
  run_->setEnabled(false);
  run_all_->setEnabled(false);
  const QStringList bins = bins_->text().split(' ', Qt::SkipEmptyParts);
  // The units the bar counts: each checkpoint on each set given (one call each), or on its own
  // validation sets.
  std::vector<std::pair<QString, QStringList>> parts;
  if (bins.isEmpty())
    parts.emplace_back(QString(), QStringList());
  else
    for (const auto& b : bins) parts.emplace_back(b, QStringList{b});
  units_ = static_cast<int>(checkpoints.size() * parts.size());
  units_done_ = 0;
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  cancelled_ = cancelled;
  clock_.start();
  progress_->setRange(0, units_);
  progress_->setValue(0);
  progress_label_->setText(QString("%1 to evaluate").arg(units_));
  cancel_->setEnabled(true);
  for (QWidget* w : std::initializer_list<QWidget*>{progress_, progress_label_, cancel_})
    w->setVisible(true);
  const int total = units_;
  worker_ = QThread::create([this, checkpoints, parts, cancelled, total] {
    int done = 0;
    for (const auto& [label, ck] : checkpoints)
      for (const auto& [name, sets] : parts) {
        if (*cancelled) return;
        try {
          // Cancel stops the set under way at its next batch.
          auto result = evaluateCheckpoint(
              ck, sets, workspace_, [this, cancelled](const QString& set, qint64 d, qint64 t) {
                Q_EMIT setProgressed(set, d, t);
                return !cancelled->load();
              });
          if (*cancelled) return;  // cancelled while it ran: dropped
          Q_EMIT evaluated(label, result);
        } catch (const std::exception& e) {
          if (*cancelled) return;  // the set under way stopped at Cancel
          Q_EMIT evaluationFailed(label + (name.isEmpty() ? QString() : " on " + name) + ": " +
                                  e.what());
        }
        Q_EMIT progressed(++done, total);
      }
  });
  // When the thread has ended (queued to this thread): it is collected without waiting.
  connect(worker_, &QThread::finished, this, [this, cancelled] {
    worker_->deleteLater();
    worker_ = nullptr;
    if (*cancelled)
      message_->setText(
          QString("evaluation cancelled: %1 of %2 done").arg(units_done_).arg(units_));
    Q_EMIT allEvaluated();
  });
  worker_->start();
}

void EvalPanel::cancel() {
  if (!worker_ || !cancelled_) return;
  *cancelled_ = true;
  cancel_->setEnabled(false);
  progress_label_->setText("cancelling: the set under way stops at its next batch");
}

void EvalPanel::show(const QString& label, const std::vector<SetEvaluation>& sets) {
  table_->setSortingEnabled(false);
  tar_table_->setSortingEnabled(false);
  auto num = [](double v, int digits) {
    auto* item = new QTableWidgetItem;
    if (std::isnan(v))
      item->setText("-");
    else
      item->setData(Qt::DisplayRole, QString::number(v, 'f', digits).toDouble());
    return item;
  };
  for (const auto& s : sets) {
    const int r = table_->rowCount();
    table_->insertRow(r);
    table_->setItem(r, 0, new QTableWidgetItem(label));
    table_->setItem(r, 1, new QTableWidgetItem(s.name));
    table_->setItem(r, 2, num(static_cast<double>(s.pairs), 0));
    table_->setItem(r, 3, num(100 * s.accuracy, 2));
    table_->setItem(r, 4, num(100 * s.accuracy_std, 2));
    table_->setItem(r, 5, num(100 * s.val, 2));
    table_->setItem(r, 6, num(s.xnorm, 3));
    table_->setItem(r, 7, num(100 * s.auc, 2));
    table_->setItem(r, 8, num(100 * s.eer, 2));
    table_->setItem(r, 9, num(s.eer_threshold, 4));
    // TAR@FAR: one column per FAR, added as new FARs appear.
    const int t = tar_table_->rowCount();
    tar_table_->insertRow(t);
    tar_table_->setItem(t, 0, new QTableWidgetItem(label));
    tar_table_->setItem(t, 1, new QTableWidgetItem(s.name));
    for (const auto& [far, tar] : s.tar_at_far) {
      const QString head = QString::fromStdString(eval::MetricName::farText(far));
      int col = -1;
      for (int c = 2; c < tar_table_->columnCount(); ++c)
        if (tar_table_->horizontalHeaderItem(c)->text() == head) col = c;
      if (col < 0) {
        col = tar_table_->columnCount();
        tar_table_->insertColumn(col);
        tar_table_->setHorizontalHeaderItem(col, new QTableWidgetItem(head));
      }
      tar_table_->setItem(t, col, num(100 * tar, 2));
    }
    const QColor colour = seriesColour(roc_->graphCount());
    addRocCurve(roc_, label + " " + s.name, colour, s.roc_far, s.roc_tar);
    addDetCurve(det_, label + " " + s.name, colour, s.det_fmr, s.det_fnmr);
    shown_.emplace_back(label, s);
    if (s.scores)
      failures_->addScores(
          label,
          s.scores->checkpoint.empty() ? QString() : QString::fromStdString(s.scores->checkpoint),
          s.scores);
    histogram_of_->addItem(label + " " + s.name);  // the first one draws its histogram
  }
  table_->setSortingEnabled(true);
  tar_table_->setSortingEnabled(true);
  table_->resizeColumnsToContents();
  tar_table_->resizeColumnsToContents();
  roc_->replot();
  det_->replot();
}

void EvalPanel::showHistogram(int index, double far) {
  if (index < 0 || index >= static_cast<int>(shown_.size())) return;
  const auto& [label, s] = shown_[static_cast<size_t>(index)];
  if (!s.scores) return;
  // The controls say what is drawn (when called from elsewhere than they).
  const QSignalBlocker block_of(histogram_of_), block_far(histogram_far_);
  histogram_of_->setCurrentIndex(index);
  if (histogram_far_->currentText().toDouble() != far)
    histogram_far_->setCurrentText(QString::number(far, 'g', 3));
  try {
    // The engine's histogram (at FAR 1e-3, computed with the evaluation) when it is the one
    // asked for; another FAR is one pass over the scores, here.
    const auto h = far == s.histogram.far && !s.histogram.genuine.empty()
                       ? s.histogram
                       : eval::scoreHistogram(s.scores->score.data(), s.scores->label.data(),
                                              static_cast<int64_t>(s.scores->size()), 60, far);
    histogram_threshold_ = h.threshold;
    drawScoreHistogram(histogram_, h, label + " " + s.name);
    histogram_->replot();
  } catch (const std::exception& e) {
    message_->setText(e.what());
  }
}

void EvalPanel::setDark(bool on) {
  dark_ = on;
  for (auto* p : {roc_, det_, histogram_}) {
    stylePlot(p, on);
    p->replot();
  }
}

}  // namespace msconv::ui
