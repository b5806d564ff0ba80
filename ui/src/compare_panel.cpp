#include "msconv/ui/compare_panel.h"

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

#include "msconv/ui/dialogs.h"
#include "msconv/ui/engine.h"
#include "plot_style.h"
#include "qcustomplot_include.h"

namespace msconv::ui {

ComparePanel::ComparePanel(QString workspace, QWidget* parent)
    : QWidget(parent), workspace_(std::move(workspace)) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  auto* reload = new QPushButton("Refresh");
  auto* save = new QPushButton("Export CSV...");
  auto* faith = new QPushButton("CAM faithfulness on set...");
  faith->setToolTip(
      "Grad-CAM deletion / insertion AUC and ROAD of every run (the last unit of "
      "the last stage) over N genuine pairs of a .bin set");
  faith_n_ = new QSpinBox;
  faith_n_->setRange(1, 100000);
  faith_n_->setValue(10);
  faith_n_->setPrefix("N = ");
  bar->addWidget(reload);
  bar->addWidget(save);
  auto* add = new QPushButton("Add model...");
  add->setToolTip(
      "a checkpoint or an ONNX file (run by OpenCV's DNN module), evaluated on a "
      ".bin set beside the runs");
  bar->addWidget(add);
  bar->addWidget(faith);
  bar->addWidget(faith_n_);
  bar->addStretch(1);
  layout->addLayout(bar);
  table_ = new QTableWidget;
  table_->setObjectName("comparison");
  table_->setSortingEnabled(true);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  layout->addWidget(table_, 1);
  connect(reload, &QPushButton::clicked, this, &ComparePanel::refresh);
  connect(save, &QPushButton::clicked, this, [this] {
    const QString f = saveFileName(this, "Export", "compare.csv", "CSV (*.csv)");
    if (!f.isEmpty()) exportCsv(f);
  });
  connect(faith, &QPushButton::clicked, this, [this] {
    const QString f = openFileName(this, "Pair set", {}, "Pair sets (*.bin)");
    if (!f.isEmpty()) computeFaithfulness(f, faith_n_->value());
  });
  connect(add, &QPushButton::clicked, this, [this] {
    const QString model =
        openFileName(this, "Model", workspace_, "Models (*.ckpt *.pt *.onnx);;All files (*)");
    if (model.isEmpty()) return;
    const QString bin = openFileName(this, "Pair set to evaluate it on", {}, "Pair sets (*.bin)");
    if (!bin.isEmpty()) addModelFile(model, {bin});
  });
  connect(this, &ComparePanel::modelFailed, this,
          [this](const QString& m) { showWarning(this, "Add model", m); });
  connect(this, &ComparePanel::faithfulnessFailed, this,
          [this](const QString& m) { showWarning(this, "CAM faithfulness", m); });
}

ComparePanel::~ComparePanel() {
  if (faith_cancel_) *faith_cancel_ = true;  // the run stops at its next model or method
  if (faith_thread_.joinable()) faith_thread_.join();
  if (file_thread_.joinable()) file_thread_.join();
}

void ComparePanel::addModelFile(const QString& path, const QStringList& bins) {
  if (file_thread_.joinable()) file_thread_.join();  // one at a time
  file_thread_ = std::thread([this, path, bins] {
    CompareRow row;
    QString error;
    try {
      row = compareModelFile(path, bins);
    } catch (const std::exception& e) {
      error = e.what();
    }
    QMetaObject::invokeMethod(
        this,
        [this, row, error] {
          if (!error.isEmpty()) {
            Q_EMIT modelFailed(error);
            return;
          }
          files_.push_back(row);
          refresh();
          Q_EMIT modelAdded();
        },
        Qt::QueuedConnection);
  });
}

void ComparePanel::computeFaithfulness(const QString& bin, int n) {
  if (faith_running_) return;
  std::vector<std::pair<QString, QString>> models;
  try {
    models = runCheckpoints(workspace_);
  } catch (const std::exception& e) {
    Q_EMIT faithfulnessFailed(e.what());
    return;
  }
  if (models.empty()) {
    Q_EMIT faithfulnessFailed("CAM faithfulness: no run has a checkpoint yet");
    return;
  }
  if (faith_thread_.joinable()) faith_thread_.join();
  faith_running_ = true;
  faith_cancel_ = std::make_shared<std::atomic<bool>>(false);
  faith_thread_ = std::thread([this, models, bin, n, cancel = faith_cancel_] {
    std::map<QString, FaithfulnessRow> last;
    QString error;
    try {
      // Each run at its last stage's last unit: the rows come stage by stage, then the stages'
      // mean ("mean"), which is not this column's.
      for (const auto& r :
           faithfulness(models, bin, n, {"gradcam"}, {}, [&cancel] { return cancel->load(); }))
        if (r.layer != "mean") last[r.model] = r;
    } catch (const Cancelled&) {
      return;  // the panel is going
    } catch (const std::exception& e) {
      error = e.what();
    }
    QMetaObject::invokeMethod(
        this,
        [this, last, error, bin] {
          faith_running_ = false;
          if (!error.isEmpty()) {
            Q_EMIT faithfulnessFailed(error);
            return;
          }
          faithfulness_ = last;
          faithfulness_set_ = QFileInfo(bin).completeBaseName();
          refresh();
          Q_EMIT faithfulnessReady();
        },
        Qt::QueuedConnection);
  });
}

void ComparePanel::invalidate() {
  stale_ = true;
  if (isVisible()) refresh();
}

void ComparePanel::showEvent(QShowEvent* e) {
  QWidget::showEvent(e);
  if (stale_) refresh();
}

void ComparePanel::refresh() {
  stale_ = false;
  std::vector<CompareRow> rows;
  try {
    rows = compareRuns(workspace_);
  } catch (const std::exception&) {
  }
  rows.insert(rows.end(), files_.begin(), files_.end());
  QStringList keys;
  for (const auto& r : rows)
    for (const auto& [k, v] : r.metrics)
      if (!keys.contains(k)) keys << k;
  // The EER on every set the workspace keeps per-pair scores of (an evaluation in the workbench
  // or by msconv eval keeps them).
  std::map<QString, std::map<QString, double>> eers;  // run -> set -> EER
  QStringList eer_sets;
  try {
    for (const auto& [name, ck] : runCheckpoints(workspace_))
      for (const auto& [set, eer] : keptEers(workspace_, ck)) {
        eers[name][set] = eer;
        if (!eer_sets.contains(set)) eer_sets << set;
      }
  } catch (const std::exception&) {
  }
  eer_sets.sort();
  QStringList head = {"model",    "operator",        "status",    "params (M)",
                      "MACs (G)", "train samples/s", "validation"};
  for (const auto& k : keys) head << k + " %";
  for (const auto& set : eer_sets) head << set + "/EER %";
  const bool faith = !faithfulness_.empty();
  if (faith)
    for (const char* m : {"deletion AUC", "insertion AUC", "ROAD combined"})
      head << QString("%1 Grad-CAM %2").arg(faithfulness_set_, m);
  table_->setSortingEnabled(false);
  table_->clear();
  table_->setColumnCount(head.size());
  table_->setHorizontalHeaderLabels(head);
  table_->setRowCount(static_cast<int>(rows.size()));
  for (int i = 0; i < static_cast<int>(rows.size()); ++i) {
    const auto& r = rows[i];
    auto num = [](double v, int digits) {
      auto* item = new QTableWidgetItem;
      if (std::isnan(v))
        item->setText("-");
      else
        item->setData(Qt::DisplayRole, QString::number(v, 'f', digits).toDouble());
      return item;
    };
    table_->setItem(i, 0, new QTableWidgetItem(r.name));
    table_->setItem(i, 1, new QTableWidgetItem(r.op));
    table_->setItem(i, 2, new QTableWidgetItem(r.status));
    table_->setItem(i, 3, num(r.params_m, 3));
    table_->setItem(i, 4, num(r.gmacs, 4));
    table_->setItem(i, 5, num(r.samples_per_s, 1));
    table_->setItem(i, 6, new QTableWidgetItem(r.validation.isEmpty() ? "-" : r.validation));
    for (int k = 0; k < keys.size(); ++k) {
      const auto it = r.metrics.find(keys[k]);
      table_->setItem(i, 7 + k,
                      it == r.metrics.end() ? new QTableWidgetItem("-") : num(100 * it->second, 2));
    }
    int col = 7 + static_cast<int>(keys.size());
    for (const auto& set : eer_sets) {
      const auto run = eers.find(r.name);
      const bool has = run != eers.end() && run->second.count(set);
      table_->setItem(i, col++,
                      has ? num(100 * run->second.at(set), 2) : new QTableWidgetItem("-"));
    }
    if (faith) {
      const auto f = faithfulness_.find(r.name);
      const bool has = f != faithfulness_.end();
      table_->setItem(i, col++, has ? num(f->second.deletion_auc, 4) : new QTableWidgetItem("-"));
      table_->setItem(i, col++, has ? num(f->second.insertion_auc, 4) : new QTableWidgetItem("-"));
      table_->setItem(i, col++, has ? num(f->second.road_combined, 4) : new QTableWidgetItem("-"));
      if (has) table_->item(i, col - 1)->setToolTip(f->second.layer);
    }
  }
  table_->setSortingEnabled(true);
  table_->resizeColumnsToContents();
}

bool ComparePanel::exportCsv(const QString& path) const {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) return false;
  QTextStream out(&f);
  for (int c = 0; c < table_->columnCount(); ++c)
    out << (c ? "," : "") << table_->horizontalHeaderItem(c)->text();
  out << "\n";
  for (int r = 0; r < table_->rowCount(); ++r) {
    for (int c = 0; c < table_->columnCount(); ++c)
      out << (c ? "," : "") << (table_->item(r, c) ? table_->item(r, c)->text() : "");
    out << "\n";
  }
  return true;
}

}  // namespace msconv::ui
