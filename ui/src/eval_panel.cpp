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
#include <QPushButton>
#include <QSaveFile>
#include <QScrollArea>
#include <QSpinBox>
#include <QTableWidget>
#include <QTextStream>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <cmath>
#include <map>

#include <QThread>

#include "msconv/eval/metric_name.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/engine.h"
#include "plot_style.h"
#include "qcustomplot_include.h"

namespace msconv::ui {

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
  auto* split = new QHBoxLayout;
  auto* tables = new QVBoxLayout;
  table_ = new QTableWidget(0, 8);
  table_->setObjectName("verification");
  table_->setHorizontalHeaderLabels(
      {"model", "set", "pairs", "accuracy %", "std %", "VAL@1e-3 %", "XNorm", "AUC %"});
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
  split->addWidget(roc_, 1);
  layout->addLayout(split, 1);
  connect(run_, &QPushButton::clicked, this, &EvalPanel::evaluate);
  connect(run_all_, &QPushButton::clicked, this, &EvalPanel::evaluateAll);
  connect(this, &EvalPanel::allEvaluated, this, [this] {
    run_->setEnabled(true);
    run_all_->setEnabled(true);
  });
  connect(open, &QPushButton::clicked, this, [this] {
    const QString f =
        openFileName(this, "Checkpoint", workspace_, "Checkpoints (*.ckpt *.pt);;All files (*)");
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
  if (worker_) {  // the panel outlives its worker: wait for the evaluation in progress
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
  worker_ = QThread::create([this, checkpoints, bins] {
    for (const auto& [label, ck] : checkpoints) {
      try {
        Q_EMIT evaluated(label, evaluateCheckpoint(ck, bins));
      } catch (const std::exception& e) {
        Q_EMIT evaluationFailed(label + ": " + e.what());
      }
    }
  });
  // When the thread has ended (queued to this thread): it is collected without waiting.
  connect(worker_, &QThread::finished, this, [this] {
    worker_->deleteLater();
    worker_ = nullptr;
    Q_EMIT allEvaluated();
  });
  worker_->start();
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
    addRocCurve(roc_, label + " " + s.name, seriesColour(roc_->graphCount()), s.roc_far, s.roc_tar);
  }
  table_->setSortingEnabled(true);
  tar_table_->setSortingEnabled(true);
  table_->resizeColumnsToContents();
  tar_table_->resizeColumnsToContents();
  roc_->replot();
}

void EvalPanel::setDark(bool on) {
  dark_ = on;
  stylePlot(roc_, on);
  roc_->replot();
}

}  // namespace msconv::ui
