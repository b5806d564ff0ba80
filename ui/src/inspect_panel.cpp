#include "msconv/ui/inspect_panel.h"

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
    const QString f = saveFileName(this, "Export " + kind, kind + ".png", "PNG (*.png)");
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
        if (failed_image_ == image_->text()) return;
        failed_image_ = image_->text();
        showWarning(this, "Inspect", m);
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
  const QString f = openFileName(this, "Face image", {}, "Images (*.jpg *.jpeg *.png *.bmp)");
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

}  // namespace msconv::ui
