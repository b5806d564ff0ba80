#include "msconv/ui/panels.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QFileDialog>
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

#include "msconv/ui/engine.h"
#include "plot_style.h"
#include "qcustomplot_include.h"

namespace msconv::ui {

// ---- Evaluation
// ----------------------------------------------------------------------------------

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
  table_->setHorizontalHeaderLabels(
      {"model", "set", "pairs", "accuracy %", "std %", "VAL@1e-3 %", "XNorm", "AUC %"});
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setSortingEnabled(true);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  tables->addWidget(new QLabel("Verification"));
  tables->addWidget(table_, 1);
  tar_table_ = new QTableWidget(0, 2);
  tar_table_->setHorizontalHeaderLabels({"model", "set"});
  tar_table_->setSortingEnabled(true);
  tar_table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  tables->addWidget(new QLabel("TAR@FAR %"));
  tables->addWidget(tar_table_, 1);
  split->addLayout(tables, 1);
  roc_ = new QCustomPlot;
  roc_->setMinimumSize(360, 300);
  setupRocPlot(roc_);
  roc_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  split->addWidget(roc_, 1);
  layout->addLayout(split, 1);
  connect(run_, &QPushButton::clicked, this, &EvalPanel::evaluate);
  connect(run_all_, &QPushButton::clicked, this, &EvalPanel::evaluateAll);
  connect(
      this, &EvalPanel::allEvaluated, this,
      [this] {
        run_->setEnabled(true);
        run_all_->setEnabled(true);
      },
      Qt::QueuedConnection);
  connect(open, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Checkpoint", workspace_,
                                                   "Checkpoints (*.ckpt *.pt);;All files (*)");
    if (!f.isEmpty()) addCheckpoint(f);
  });
  connect(add_set, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Pair set", {}, "Pair sets (*.bin)");
    if (!f.isEmpty()) bins_->setText((bins_->text() + " " + f).trimmed());
  });
  connect(this, &EvalPanel::evaluated, this, &EvalPanel::show, Qt::QueuedConnection);
  connect(this, &EvalPanel::evaluationFailed, this, &EvalPanel::fail, Qt::QueuedConnection);
  setDark(false);
  refresh();
}

EvalPanel::~EvalPanel() {
  if (worker_.joinable()) worker_.join();
}

void EvalPanel::fail(const QString& m) {
  message_->setText(m);
  if (quiet) return;
  auto* box = new QMessageBox(QMessageBox::Warning, "Evaluation", m, QMessageBox::Ok, this);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();
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
  if (worker_.joinable()) worker_.join();
  message_->clear();
  run_->setEnabled(false);
  run_all_->setEnabled(false);
  const QStringList bins = bins_->text().split(' ', Qt::SkipEmptyParts);
  worker_ = std::thread([this, checkpoints, bins] {
    for (const auto& [label, ck] : checkpoints) {
      try {
        Q_EMIT evaluated(label, evaluateCheckpoint(ck, bins));
      } catch (const std::exception& e) {
        Q_EMIT evaluationFailed(label + ": " + e.what());
      }
    }
    Q_EMIT allEvaluated();
  });
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
      const QString head = QString("%1").arg(far, 0, 'e', 0);
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

int EvalPanel::resultRows() const {
  return table_->rowCount();
}
int EvalPanel::tarRows() const {
  return tar_table_->rowCount();
}
int EvalPanel::rocCurves() const {
  return roc_->graphCount();
}

// ---- Inspect
// -------------------------------------------------------------------------------------

InspectPanel::InspectPanel(QString workspace, QWidget* parent)
    : QWidget(parent), workspace_(std::move(workspace)) {
  setAcceptDrops(true);
  queue_ = new InspectQueue(this);
  auto* layout = new QHBoxLayout(this);
  auto* controls = new QWidget;
  auto* form = new QFormLayout(controls);
  image_ = new QLineEdit;
  image_->setPlaceholderText("face image (or drop one here)");
  auto* browse_button = new QPushButton("Open...");
  dataset_ = new QComboBox;
  dataset_->setToolTip("a face from the training set of the first checked model");
  reference_ = new QLineEdit;
  reference_->setPlaceholderText("reference image (cosine target)");
  models_ = new QListWidget;
  models_->setMaximumHeight(110);
  layer_tree_ = new QTreeWidget;
  layer_tree_->setHeaderLabel("layer (feature maps)");
  layer_tree_->setMinimumHeight(140);
  method_ = new QComboBox;
  method_->addItems(
      {"gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam"});
  target_ = new QComboBox;
  target_->addItems({"norm", "cosine"});
  target_->setEditable(true);  // also identity:N
  target_->setToolTip("norm, cosine (to the reference image) or identity:N (a training class)");
  colormap_ = new QComboBox;
  colormap_->addItems({"jet", "turbo", "viridis", "inferno", "gray"});
  alpha_ = new QDoubleSpinBox;
  alpha_->setRange(0, 1);
  alpha_->setSingleStep(0.1);
  alpha_->setValue(0.5);
  top_ = new QSpinBox;
  top_->setRange(1, 16);
  top_->setValue(5);
  shared_scale_ = new QCheckBox("one scale for all maps");
  auto* export_maps = new QPushButton("Export feature maps...");
  auto* export_cam = new QPushButton("Export Grad-CAM...");
  form->addRow("image", image_);
  form->addRow("", browse_button);
  form->addRow("from dataset", dataset_);
  form->addRow("reference", reference_);
  form->addRow("models", models_);
  form->addRow(layer_tree_);
  form->addRow("channels", top_);
  form->addRow("", shared_scale_);
  form->addRow("CAM method", method_);
  form->addRow("target", target_);
  form->addRow("colormap", colormap_);
  form->addRow("image weight", alpha_);
  form->addRow(export_maps);
  form->addRow(export_cam);
  message_ = new QLabel;
  message_->setStyleSheet("color: #d33;");
  message_->setWordWrap(true);
  form->addRow(message_);
  layout->addWidget(controls, 1);
  auto* views = new QVBoxLayout;
  feature_view_ = new QLabel("feature maps: add / multiply / subtract of the two branches");
  cam_view_ = new QLabel("Grad-CAM: models x layers");
  for (auto* v : {feature_view_, cam_view_}) {
    auto* scroll = new QScrollArea;
    scroll->setWidget(v);
    scroll->setWidgetResizable(true);
    views->addWidget(scroll, 1);
  }
  layout->addLayout(views, 3);
  connect(browse_button, &QPushButton::clicked, this, &InspectPanel::browse);
  connect(dataset_, &QComboBox::activated, this, [this](int i) {
    const QString set = dataset_->itemData(i, Qt::UserRole + 1).toString();
    const qint64 index = dataset_->itemData(i).toLongLong();
    if (set.isEmpty()) return;
    try {
      setImage(datasetImageFile(set, index));
    } catch (const std::exception& e) {
      message_->setText(e.what());
    }
  });
  for (auto* c : {method_, target_, colormap_})
    connect(c, &QComboBox::currentTextChanged, this, &InspectPanel::request);
  connect(layer_tree_, &QTreeWidget::currentItemChanged, this, &InspectPanel::request);
  connect(alpha_, &QDoubleSpinBox::valueChanged, this, &InspectPanel::request);
  connect(top_, &QSpinBox::valueChanged, this, &InspectPanel::request);
  connect(shared_scale_, &QCheckBox::toggled, this, &InspectPanel::request);
  connect(models_, &QListWidget::itemChanged, this, &InspectPanel::request);
  connect(image_, &QLineEdit::editingFinished, this, &InspectPanel::request);
  connect(reference_, &QLineEdit::editingFinished, this, &InspectPanel::request);
  auto exporter = [this](const QString& kind) {
    const QString f =
        QFileDialog::getSaveFileName(this, "Export " + kind, kind + ".png", "PNG (*.png)");
    if (!f.isEmpty() && !exportPng(kind, f)) message_->setText("cannot write " + f);
  };
  connect(export_maps, &QPushButton::clicked, this, [exporter] { exporter("featuremaps"); });
  connect(export_cam, &QPushButton::clicked, this, [exporter] { exporter("gradcam"); });
  connect(
      queue_, &InspectQueue::ready, this,
      [this](const QString& kind, const QImage& img) {
        (kind == "featuremaps" ? feature_ : cam_) = img;
        (kind == "featuremaps" ? feature_view_ : cam_view_)->setPixmap(QPixmap::fromImage(img));
        message_->clear();
        Q_EMIT updated(kind);
      },
      Qt::QueuedConnection);
  connect(
      queue_, &InspectQueue::failed, this,
      [this](const QString&, const QString& m) {
        message_->setText(m);
        // A corrupt or foreign image: one dialog per image, not one per control change.
        if (quiet || failed_image_ == image_->text()) return;
        failed_image_ = image_->text();
        auto* box = new QMessageBox(QMessageBox::Warning, "Inspect", m, QMessageBox::Ok, this);
        box->setAttribute(Qt::WA_DeleteOnClose);
        box->open();
      },
      Qt::QueuedConnection);
  refresh();
}

void InspectPanel::refresh() {
  models_->blockSignals(true);
  models_->clear();
  try {
    for (const auto& [name, ck] : runCheckpoints(workspace_)) {
      auto* item = new QListWidgetItem(name, models_);
      item->setData(Qt::UserRole, ck);
      item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
      item->setCheckState(models_->count() <= 3 ? Qt::Checked : Qt::Unchecked);
    }
  } catch (const std::exception& e) {
    message_->setText(e.what());
  }
  models_->blockSignals(false);
  // The layer tree: stage -> operator layers of the first model ("stage2.1.op" under stage2).
  const QString previous = layer();
  layer_tree_->blockSignals(true);
  layer_tree_->clear();
  try {
    if (models_->count() > 0) {
      std::map<QString, QTreeWidgetItem*> stages;
      QTreeWidgetItem* select = nullptr;
      for (const auto& l : operatorLayers(models_->item(0)->data(Qt::UserRole).toString())) {
        const QStringList parts = l.split('.');
        const QString stage = parts.size() >= 2 ? parts[0] : QString("model");
        auto*& parent = stages[stage];
        if (!parent) {
          parent = new QTreeWidgetItem(layer_tree_, {stage});
          parent->setFlags(parent->flags() & ~Qt::ItemIsSelectable);
        }
        auto* item = new QTreeWidgetItem(parent, {l});
        item->setData(0, Qt::UserRole, l);
        if (!select || l == previous) select = item;
      }
      layer_tree_->expandAll();
      if (select) layer_tree_->setCurrentItem(select);
    }
  } catch (const std::exception& e) {
    message_->setText(e.what());
  }
  layer_tree_->blockSignals(false);
  fillDataset();
}

InspectPanel::~InspectPanel() {
  if (dataset_thread_.joinable()) dataset_thread_.join();
}

void InspectPanel::fillDataset() {
  dataset_->clear();
  if (models_->count() == 0) return;
  const QString ckpt = models_->item(0)->data(Qt::UserRole).toString();
  if (dataset_thread_.joinable()) dataset_thread_.join();
  dataset_->addItem("(reading the training set...)");
  dataset_thread_ = std::thread([this, ckpt] {
    QString set, error;
    std::vector<std::pair<QString, qint64>> samples;
    try {
      set = trainingSetOf(ckpt);
      if (!set.isEmpty()) samples = datasetSamples(set, 200);
    } catch (const std::exception& e) {
      error = e.what();
    }
    QMetaObject::invokeMethod(
        this,
        [this, set, samples, error] {
          dataset_->clear();
          if (!error.isEmpty()) dataset_->addItem("(training set unavailable: " + error + ")");
          for (const auto& [label, index] : samples) {
            dataset_->addItem(label, index);
            dataset_->setItemData(dataset_->count() - 1, set, Qt::UserRole + 1);
          }
          Q_EMIT datasetListed();
        },
        Qt::QueuedConnection);
  });
}

int InspectPanel::datasetFaces() const {
  int n = 0;
  for (int i = 0; i < dataset_->count(); ++i)
    n += !dataset_->itemData(i, Qt::UserRole + 1).toString().isEmpty();
  return n;
}

QString InspectPanel::layer() const {
  const auto* item = layer_tree_->currentItem();
  return item ? item->data(0, Qt::UserRole).toString() : QString();
}

QStringList InspectPanel::layers() const {
  QStringList out;
  for (int i = 0; i < layer_tree_->topLevelItemCount(); ++i)
    for (int j = 0; j < layer_tree_->topLevelItem(i)->childCount(); ++j)
      out << layer_tree_->topLevelItem(i)->child(j)->data(0, Qt::UserRole).toString();
  return out;
}

void InspectPanel::setImage(const QString& path) {
  image_->setText(path);
  request();
}

void InspectPanel::setReference(const QString& path) {
  reference_->setText(path);
  target_->setCurrentText(path.isEmpty() ? "norm" : "cosine");  // requests the grids again
}

void InspectPanel::browse() {
  const QString f =
      QFileDialog::getOpenFileName(this, "Face image", {}, "Images (*.jpg *.jpeg *.png *.bmp)");
  if (!f.isEmpty()) setImage(f);
}

bool InspectPanel::exportPng(const QString& kind, const QString& path) const {
  const QImage& img = kind == "featuremaps" ? feature_ : cam_;
  QSaveFile f(path);
  return !img.isNull() && f.open(QIODevice::WriteOnly) && img.save(&f, "PNG") && f.commit();
}

void InspectPanel::request() {
  const QString image = image_->text();
  QStringList ckpts;
  for (int i = 0; i < models_->count(); ++i)
    if (models_->item(i)->checkState() == Qt::Checked)
      ckpts << models_->item(i)->data(Qt::UserRole).toString();
  if (image.isEmpty() || ckpts.isEmpty()) return;
  if (image != failed_image_) failed_image_.clear();
  const QString layer = this->layer(), method = method_->currentText(),
                target = target_->currentText(), cmap = colormap_->currentText(),
                ref = reference_->text();
  const double alpha = alpha_->value();
  const int top = top_->value();
  const bool shared = shared_scale_->isChecked();
  const QString first = ckpts.front();
  queue_->submit("featuremaps", [=] {
    return featureMapFigure(first, image, layer, top, cmap == "jet" ? "viridis" : cmap, shared);
  });
  queue_->submit("gradcam",
                 [=] { return gradcamFigure(ckpts, image, method, target, ref, cmap, alpha); });
}

void InspectPanel::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void InspectPanel::dropEvent(QDropEvent* e) {
  const auto urls = e->mimeData()->urls();
  if (!urls.isEmpty()) setImage(urls.front().toLocalFile());
}

// ---- Compare
// -------------------------------------------------------------------------------------

ComparePanel::ComparePanel(QString workspace, QWidget* parent)
    : QWidget(parent), workspace_(std::move(workspace)) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  auto* reload = new QPushButton("Refresh");
  auto* save = new QPushButton("Export CSV...");
  bar->addWidget(reload);
  bar->addWidget(save);
  bar->addStretch(1);
  layout->addLayout(bar);
  table_ = new QTableWidget;
  table_->setSortingEnabled(true);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  layout->addWidget(table_, 1);
  connect(reload, &QPushButton::clicked, this, &ComparePanel::refresh);
  connect(save, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, "Export", "compare.csv", "CSV (*.csv)");
    if (!f.isEmpty()) exportCsv(f);
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
  QStringList keys;
  for (const auto& r : rows)
    for (const auto& [k, v] : r.metrics)
      if (!keys.contains(k)) keys << k;
  QStringList head = {"model", "operator", "status", "params (M)", "MACs (G)", "train samples/s"};
  for (const auto& k : keys) head << k + " %";
  table_->setSortingEnabled(false);
  table_->clear();
  table_->setColumnCount(head.size());
  table_->setHorizontalHeaderLabels(head);
  table_->setRowCount(static_cast<int>(rows.size()));
  for (int i = 0; i < static_cast<int>(rows.size()); ++i) {
    const auto& r = rows[i];
    auto num = [](double v, int digits) {
      auto* item = new QTableWidgetItem;
      item->setData(Qt::DisplayRole, QString::number(v, 'f', digits).toDouble());
      return item;
    };
    table_->setItem(i, 0, new QTableWidgetItem(r.name));
    table_->setItem(i, 1, new QTableWidgetItem(r.op));
    table_->setItem(i, 2, new QTableWidgetItem(r.status));
    table_->setItem(i, 3, num(r.params_m, 3));
    table_->setItem(i, 4, num(r.gmacs, 4));
    table_->setItem(i, 5, num(r.samples_per_s, 1));
    for (int k = 0; k < keys.size(); ++k) {
      const auto it = r.metrics.find(keys[k]);
      table_->setItem(i, 6 + k,
                      it == r.metrics.end() ? new QTableWidgetItem("-") : num(100 * it->second, 2));
    }
  }
  table_->setSortingEnabled(true);
  table_->resizeColumnsToContents();
}

int ComparePanel::rows() const {
  return table_->rowCount();
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
