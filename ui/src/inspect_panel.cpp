#include "msconv/ui/inspect_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialog>
#include <QDir>
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
#include <QMainWindow>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QSaveFile>
#include <QShowEvent>
#include <QSpinBox>
#include <QSplitter>
#include <QStatusBar>
#include <QTableWidget>
#include <QTextStream>
#include <QToolButton>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <cmath>
#include <map>

#include "msconv/ui/dialogs.h"
#include "msconv/ui/engine.h"
#include "msconv/ui/figure_view.h"
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
  auto* export_arrays = new QPushButton("Export arrays...");
  export_arrays->setToolTip(
      "the CAMs and feature maps shown, as float32 .npy files and index.json (numpy.load reads "
      "them), as msconv gradcam / featuremaps --save-arrays write them");
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
  form->addRow(export_arrays);
  message_ = new QLabel;
  message_->setStyleSheet("color: #d33;");
  message_->setWordWrap(true);
  form->addRow(message_);
  layout->addWidget(controls, 1);
  // The two figures and the faithfulness table, one above the other, their heights shared by
  // a splitter; the value under the mouse below them all.
  auto* splitter = new QSplitter(Qt::Vertical);
  splitter->setChildrenCollapsible(false);
  feature_view_ = new FigureView(
      "feature maps: add / multiply / subtract of the two branches, the checked models side by "
      "side\n\n(check a model and choose a face)");
  feature_view_->setObjectName("featuremaps");
  cam_view_ = new FigureView("Grad-CAM: models x layers\n\n(check a model and choose a face)");
  cam_view_->setObjectName("gradcam");
  // Each figure: a title with the zoom buttons above its view.
  for (auto* v : {feature_view_, cam_view_}) {
    auto* bar = new QHBoxLayout;
    bar->addWidget(new QLabel(v == feature_view_ ? "<b>Feature maps</b>" : "<b>Grad-CAM</b>"));
    bar->addStretch(1);
    const std::pair<const char*, const char*> buttons[] = {{"\u2212", "zoom out (-)"},
                                                           {"+", "zoom in (+)"},
                                                           {"Fit", "the whole figure (0)"},
                                                           {"1:1", "one pixel per pixel (1)"}};
    for (const auto& [text, tip] : buttons) {
      auto* b = new QToolButton;
      b->setText(QString::fromUtf8(text));
      b->setToolTip(tip);
      b->setObjectName(QString(v->objectName()) + "_" + QString::fromUtf8(text));
      bar->addWidget(b);
      const QString t = QString::fromUtf8(text);
      connect(b, &QToolButton::clicked, v, [v, t] {
        if (t == "+")
          v->zoomIn();
        else if (t == "Fit")
          v->fit();
        else if (t == "1:1")
          v->actualSize();
        else
          v->zoomOut();
      });
    }
    auto* block = new QWidget;
    auto* block_layout = new QVBoxLayout(block);
    block_layout->setContentsMargins(0, 0, 0, 0);
    block_layout->addLayout(bar);
    block_layout->addWidget(v, 1);
    splitter->addWidget(block);
    if (v == feature_view_) {
      feature_note_ = new QLabel;
      feature_note_->setStyleSheet("color: #b60;");
      feature_note_->setWordWrap(true);
      feature_note_->hide();
      block_layout->addWidget(feature_note_);
    }
    connect(v, &FigureView::hovered, this, &InspectPanel::showValue);
    connect(v, &FigureView::tileClicked, this, [this, v](int tile) {
      enlargeTile(v == feature_view_ ? "featuremaps" : "gradcam", tile);
    });
  }
  value_ = new QLabel(" ");
  value_->setObjectName("value_under_mouse");
  value_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  value_->setToolTip("the tile under the mouse: model, layer, channel, position and value");

  // Faithfulness: is the heat map evidence? Deletion / insertion / ROAD over N pairs of a set.
  auto* faith = new QWidget;
  auto* faith_layout = new QVBoxLayout(faith);
  faith_layout->setContentsMargins(0, 0, 0, 0);
  auto* faith_row = new QHBoxLayout;
  faith_set_ = new QLineEdit;
  faith_set_->setPlaceholderText(
      ".bin pair set: each of N genuine pairs' first image explained "
      "for its cosine to the second");
  auto* faith_browse = new QPushButton("Pair set...");
  faith_n_ = new QSpinBox;
  faith_n_->setRange(1, 100000);
  faith_n_->setValue(10);
  faith_n_->setPrefix("N = ");
  auto* faith_go = new QPushButton("CAM faithfulness");
  faith_go->setToolTip("the checked models, the CAM method above, the last unit of each stage");
  auto* faith_cancel = new QPushButton("Cancel");
  faith_row->addWidget(new QLabel("faithfulness on"));
  faith_row->addWidget(faith_set_, 1);
  faith_row->addWidget(faith_browse);
  faith_row->addWidget(faith_n_);
  faith_row->addWidget(faith_go);
  faith_row->addWidget(faith_cancel);
  faith_layout->addLayout(faith_row);
  faith_status_ = new QLabel;
  faith_status_->setWordWrap(true);
  faith_layout->addWidget(faith_status_);
  faith_table_ = new QTableWidget(0, 11);
  faith_table_->setObjectName("faithfulness");
  faith_table_->setHorizontalHeaderLabels({"model", "layer", "method", "pairs", "deletion AUC",
                                           "insertion AUC", "ROAD most", "ROAD least",
                                           "ROAD combined", "avg drop %", "increase %"});
  faith_table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  faith_table_->setSortingEnabled(true);
  faith_table_->horizontalHeaderItem(4)->setToolTip("lower: more faithful");
  faith_table_->horizontalHeaderItem(5)->setToolTip("higher: more faithful");
  faith_table_->horizontalHeaderItem(8)->setToolTip("higher: more faithful");
  faith_layout->addWidget(faith_table_, 1);
  splitter->addWidget(faith);
  splitter->setStretchFactor(0, 3);
  splitter->setStretchFactor(1, 3);
  splitter->setStretchFactor(2, 1);
  auto* views = new QVBoxLayout;
  views->addWidget(splitter, 1);
  views->addWidget(value_);
  layout->addLayout(views, 3);
  connect(faith_browse, &QPushButton::clicked, this, [this] {
    const QString f = openFileName(this, "Pair set", {}, "Pair sets (*.bin)");
    if (!f.isEmpty()) faith_set_->setText(f);
  });
  connect(faith_go, &QPushButton::clicked, this,
          [this] { computeFaithfulness(faith_set_->text(), faith_n_->value()); });
  connect(faith_cancel, &QPushButton::clicked, this, &InspectPanel::cancelFaithfulness);
  connect(this, &InspectPanel::faithfulnessFailed, faith_status_, &QLabel::setText);
  connect(export_arrays, &QPushButton::clicked, this, [this] {
    const QString d = saveFileName(this, "Export arrays (a folder)", "arrays", "Folders (*)");
    if (!d.isEmpty()) exportArrays(d);
  });
  connect(this, &InspectPanel::arraysExported, this, [this](const QStringList& files) {
    message_->setText(QString("%1 arrays written").arg(files.size() - 2));
  });
  connect(this, &InspectPanel::arraysFailed, this, [this](const QString& m) {
    message_->setText(m);
    showWarning(this, "Export arrays", m);
  });
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
      queue_, &InspectQueue::figureReady, this,
      [this](const QString&, const InspectFigure& figure) { showFigure(figure); },
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
  request();  // a model and a face: both figures at once, no click on a layer needed
}

InspectPanel::~InspectPanel() {
  if (faith_generation_) ++*faith_generation_;  // a faithfulness run stops at its next check
  if (dataset_thread_.joinable()) dataset_thread_.join();
  for (auto& j : jobs_) j.thread.join();
}

void InspectPanel::startJob(std::function<void()> job) {
  for (auto it = jobs_.begin(); it != jobs_.end();)
    if (*it->done) {
      it->thread.join();
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  auto done = std::make_shared<std::atomic<bool>>(false);
  jobs_.push_back({std::thread([job = std::move(job), done] {
                     job();
                     *done = true;
                   }),
                   done});
}

QStringList InspectPanel::checkedModels() const {
  QStringList ckpts;
  for (int i = 0; i < models_->count(); ++i)
    if (models_->item(i)->checkState() == Qt::Checked)
      ckpts << models_->item(i)->data(Qt::UserRole).toString();
  return ckpts;
}

void InspectPanel::exportArrays(const QString& dir) {
  const QString image = image_->text();
  const QStringList ckpts = checkedModels();
  if (image.isEmpty() || ckpts.isEmpty()) {
    Q_EMIT arraysFailed("export arrays: choose an image and check a model first");
    return;
  }
  const QString layer = this->layer(), method = method_->currentText(),
                target = target_->currentText(), ref = reference_->text();
  const int top = top_->value();
  startJob([this, dir, image, ckpts, layer, method, target, ref, top] {
    QStringList files;
    QString error;
    try {
      files << exportCamArrays(ckpts, image, method, target, ref, QDir(dir).filePath("gradcam"));
      files << exportFeatureMapArrays(ckpts.front(), image, layer, top,
                                      QDir(dir).filePath("featuremaps"));
    } catch (const std::exception& e) {
      error = e.what();
    }
    QMetaObject::invokeMethod(
        this,
        [this, files, error] {
          if (error.isEmpty())
            Q_EMIT arraysExported(files);
          else
            Q_EMIT arraysFailed(error);
        },
        Qt::QueuedConnection);
  });
}

void InspectPanel::cancelFaithfulness() {
  if (faith_generation_) ++*faith_generation_;
  faith_status_->setText("cancelled");
}

void InspectPanel::computeFaithfulness(const QString& bin, int n) {
  const QStringList ckpts = checkedModels();
  if (bin.isEmpty() || ckpts.isEmpty()) {
    Q_EMIT faithfulnessFailed("faithfulness: choose a .bin pair set and check a model first");
    return;
  }
  std::vector<std::pair<QString, QString>> models;
  for (int i = 0; i < models_->count(); ++i)
    if (models_->item(i)->checkState() == Qt::Checked)
      models.emplace_back(models_->item(i)->text(),
                          models_->item(i)->data(Qt::UserRole).toString());
  if (!faith_generation_) faith_generation_ = std::make_shared<std::atomic<uint64_t>>(0);
  const auto generation = faith_generation_;
  const uint64_t mine = ++*generation;  // any run in progress stops at its next check
  const QString method = method_->currentText();
  faith_status_->setText(QString("computing on %1 pairs of %2...").arg(n).arg(bin));
  startJob([this, generation, mine, models, bin, n, method] {
    std::vector<FaithfulnessRow> rows;
    QString error;
    try {
      rows = faithfulness(models, bin, n, {method}, {}, [&] { return *generation != mine; });
    } catch (const Cancelled&) {
      return;  // superseded or cancelled: nothing to show
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (*generation != mine) return;
    QMetaObject::invokeMethod(
        this,
        [this, generation, mine, rows, error] {
          if (*generation != mine) return;
          if (!error.isEmpty()) {
            faith_status_->setText(error);
            Q_EMIT faithfulnessFailed(error);
            return;
          }
          faith_table_->setSortingEnabled(false);
          faith_table_->setRowCount(static_cast<int>(rows.size()));
          auto num = [](double v, int digits) {
            auto* item = new QTableWidgetItem;
            if (std::isnan(v))
              item->setText("-");  // a metric not measured
            else
              item->setData(Qt::DisplayRole, QString::number(v, 'f', digits).toDouble());
            return item;
          };
          for (int r = 0; r < static_cast<int>(rows.size()); ++r) {
            const auto& f = rows[static_cast<size_t>(r)];
            faith_table_->setItem(r, 0, new QTableWidgetItem(f.model));
            faith_table_->setItem(r, 1, new QTableWidgetItem(f.layer));
            faith_table_->setItem(r, 2, new QTableWidgetItem(f.method));
            faith_table_->setItem(r, 3, num(f.pairs, 0));
            faith_table_->setItem(r, 4, num(f.deletion_auc, 4));
            faith_table_->setItem(r, 5, num(f.insertion_auc, 4));
            faith_table_->setItem(r, 6, num(f.road_most, 4));
            faith_table_->setItem(r, 7, num(f.road_least, 4));
            faith_table_->setItem(r, 8, num(f.road_combined, 4));
            faith_table_->setItem(r, 9, num(f.drop, 2));
            faith_table_->setItem(r, 10, num(100 * f.increase, 1));
          }
          faith_table_->setSortingEnabled(true);
          faith_table_->resizeColumnsToContents();
          faith_status_->setText(QString("%1 rows").arg(rows.size()));
          Q_EMIT faithfulnessReady(static_cast<int>(rows.size()));
        },
        Qt::QueuedConnection);
  });
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
          if (isVisible()) pickFirstFace();
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

void InspectPanel::pickFirstFace() {
  if (!image_->text().isEmpty() || checkedModels().isEmpty()) return;
  for (int i = 0; i < dataset_->count(); ++i) {
    const QString set = dataset_->itemData(i, Qt::UserRole + 1).toString();
    if (set.isEmpty()) continue;
    try {
      dataset_->setCurrentIndex(i);
      setImage(datasetImageFile(set, dataset_->itemData(i).toLongLong()));
    } catch (const std::exception& e) {
      message_->setText(e.what());
    }
    return;
  }
}

void InspectPanel::showEvent(QShowEvent* e) {
  QWidget::showEvent(e);
  pickFirstFace();
}

void InspectPanel::setChecked(const QString& run, bool checked) {
  for (int i = 0; i < models_->count(); ++i)
    if (models_->item(i)->text() == run)
      models_->item(i)->setCheckState(checked ? Qt::Checked : Qt::Unchecked);  // requests
}

void InspectPanel::showFigure(const InspectFigure& figure) {
  const bool features = figure.kind == "featuremaps";
  (features ? feature_ : cam_) = figure.image;
  (features ? feature_view_ : cam_view_)->setFigure(figure);
  if (features) {
    feature_note_->setText(figure.note);
    feature_note_->setVisible(!figure.note.isEmpty());
  }
  message_->clear();
  Q_EMIT updated(figure.kind);
}

QString InspectPanel::valueText() const {
  return value_->text().trimmed();
}

void InspectPanel::showValue(const QString& text) {
  value_->setText(text.isEmpty() ? " " : text);
  if (auto* w = qobject_cast<QMainWindow*>(window())) {
    if (text.isEmpty())
      w->statusBar()->clearMessage();
    else
      w->statusBar()->showMessage(text);
  }
}

void InspectPanel::enlargeTile(const QString& kind, int tile) {
  const InspectFigure& f = (kind == "featuremaps" ? feature_view_ : cam_view_)->figure();
  if (tile < 0 || tile >= static_cast<int>(f.tiles.size())) return;
  const FigureTile& t = f.tiles[static_cast<size_t>(tile)];
  if (!enlarged_) {
    enlarged_ = new QDialog(this);
    enlarged_->setObjectName("enlarged_tile");
    enlarged_->resize(560, 620);
    auto* layout = new QVBoxLayout(enlarged_);
    enlarged_title_ = new QLabel;
    enlarged_view_ = new FigureView;
    enlarged_view_->setObjectName("enlarged");
    enlarged_value_ = new QLabel(" ");
    enlarged_value_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(enlarged_title_);
    layout->addWidget(enlarged_view_, 1);
    layout->addWidget(enlarged_value_);
    connect(enlarged_view_, &FigureView::hovered, enlarged_value_,
            [this](const QString& text) { enlarged_value_->setText(text.isEmpty() ? " " : text); });
  }
  const QString what =
      t.isCam() ? QString("%1   %2   CAM").arg(t.model, t.layer)
                : QString("%1   %2   %3   channel %4").arg(t.model, t.layer, t.row).arg(t.channel);
  enlarged_->setWindowTitle(what);
  enlarged_title_->setText(
      QString("<b>%1</b>   (%2 x %3)").arg(what.toHtmlEscaped()).arg(t.width).arg(t.height));
  enlarged_view_->setFigure(enlargedTile(t));
  enlarged_view_->fit();
  enlarged_->show();
  enlarged_->raise();
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
  queue_->submitFigure("featuremaps", [=] {
    return featureMapsFigure(ckpts, image, layer, top, cmap == "jet" ? "viridis" : cmap, shared);
  });
  queue_->submitFigure("gradcam", [=] {
    return gradcamValuesFigure(ckpts, image, method, target, ref, cmap, alpha);
  });
}

void InspectPanel::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void InspectPanel::dropEvent(QDropEvent* e) {
  const auto urls = e->mimeData()->urls();
  if (!urls.isEmpty()) setImage(urls.front().toLocalFile());
}

}  // namespace msconv::ui
