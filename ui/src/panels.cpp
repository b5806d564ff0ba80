#include "msconv/ui/panels.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMimeData>
#include <QPushButton>
#include <QScrollArea>
#include <QTableWidget>
#include <QTextStream>
#include <QVBoxLayout>

#include "msconv/ui/engine.h"
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
  bins_ = new QLineEdit;
  bins_->setPlaceholderText(".bin files, separated by spaces (empty: the run's validation sets)");
  run_ = new QPushButton("Evaluate");
  row->addWidget(new QLabel("checkpoint"));
  row->addWidget(checkpoint_, 1);
  row->addWidget(bins_, 2);
  row->addWidget(run_);
  layout->addLayout(row);
  message_ = new QLabel;
  message_->setStyleSheet("color: #d33;");
  layout->addWidget(message_);
  auto* split = new QHBoxLayout;
  table_ = new QTableWidget(0, 8);
  table_->setHorizontalHeaderLabels(
      {"model", "set", "pairs", "accuracy %", "std %", "VAL@1e-3 %", "AUC %", "TAR@FAR %"});
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setSortingEnabled(true);
  split->addWidget(table_, 1);
  roc_ = new QCustomPlot;
  roc_->setMinimumSize(360, 300);
  roc_->xAxis->setScaleType(QCPAxis::stLogarithmic);
  roc_->xAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  roc_->xAxis->setLabel("FAR");
  roc_->yAxis->setLabel("TAR");
  roc_->legend->setVisible(true);
  split->addWidget(roc_, 1);
  layout->addLayout(split, 1);
  connect(run_, &QPushButton::clicked, this, &EvalPanel::evaluate);
  connect(this, &EvalPanel::evaluated, this, &EvalPanel::show, Qt::QueuedConnection);
  connect(
      this, &EvalPanel::evaluationFailed, this,
      [this](const QString& m) {
        message_->setText(m);
        run_->setEnabled(true);
      },
      Qt::QueuedConnection);
  refresh();
}

EvalPanel::~EvalPanel() {
  if (worker_.joinable()) worker_.join();
}

void EvalPanel::refresh() {
  checkpoint_->clear();
  try {
    for (const auto& [name, ck] : runCheckpoints(workspace_)) checkpoint_->addItem(name, ck);
  } catch (const std::exception& e) {
    message_->setText(e.what());
  }
}

void EvalPanel::evaluate() {
  if (checkpoint_->currentIndex() < 0) {
    message_->setText("no checkpoint: train a run first");
    return;
  }
  if (worker_.joinable()) worker_.join();
  message_->clear();
  run_->setEnabled(false);
  const QString label = checkpoint_->currentText(), ck = checkpoint_->currentData().toString();
  const QStringList bins = bins_->text().split(' ', Qt::SkipEmptyParts);
  worker_ = std::thread([this, label, ck, bins] {
    try {
      Q_EMIT evaluated(label, evaluateCheckpoint(ck, bins));
    } catch (const std::exception& e) {
      Q_EMIT evaluationFailed(e.what());
    }
  });
}

void EvalPanel::show(const QString& label, const std::vector<SetEvaluation>& sets) {
  run_->setEnabled(true);
  table_->setSortingEnabled(false);
  static const QColor colours[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44),
                                   QColor(214, 39, 40)};
  for (const auto& s : sets) {
    const int r = table_->rowCount();
    table_->insertRow(r);
    QString tars;
    for (const auto& [far, tar] : s.tar_at_far)
      tars += QString("%1:%2 ").arg(far, 0, 'e', 0).arg(100 * tar, 0, 'f', 2);
    const QStringList cells = {label,
                               s.name,
                               QString::number(s.pairs),
                               QString::number(100 * s.accuracy, 'f', 2),
                               QString::number(100 * s.accuracy_std, 'f', 2),
                               QString::number(100 * s.val, 'f', 2),
                               QString::number(100 * s.auc, 'f', 2),
                               tars};
    for (int c = 0; c < cells.size(); ++c) table_->setItem(r, c, new QTableWidgetItem(cells[c]));
    auto* g = roc_->addGraph();
    g->setName(label + " " + s.name);
    g->setPen(QPen(colours[(roc_->graphCount() - 1) % 4], 2));
    QVector<double> x(s.roc_far.begin(), s.roc_far.end()), y(s.roc_tar.begin(), s.roc_tar.end());
    g->setData(x, y);
  }
  table_->setSortingEnabled(true);
  roc_->rescaleAxes();
  roc_->yAxis->setRange(0, 1.02);
  roc_->replot();
}

int EvalPanel::resultRows() const {
  return table_->rowCount();
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
  auto* browse = new QPushButton("Open...");
  reference_ = new QLineEdit;
  reference_->setPlaceholderText("reference image (cosine target)");
  models_ = new QListWidget;
  layer_ = new QComboBox;
  method_ = new QComboBox;
  method_->addItems(
      {"gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam"});
  target_ = new QComboBox;
  target_->addItems({"norm", "cosine"});
  colormap_ = new QComboBox;
  colormap_->addItems({"jet", "turbo", "viridis", "inferno"});
  alpha_ = new QDoubleSpinBox;
  alpha_->setRange(0, 1);
  alpha_->setSingleStep(0.1);
  alpha_->setValue(0.5);
  form->addRow("image", image_);
  form->addRow("", browse);
  form->addRow("reference", reference_);
  form->addRow("models", models_);
  form->addRow("layer", layer_);
  form->addRow("method", method_);
  form->addRow("target", target_);
  form->addRow("colormap", colormap_);
  form->addRow("image weight", alpha_);
  message_ = new QLabel;
  message_->setStyleSheet("color: #d33;");
  message_->setWordWrap(true);
  form->addRow(message_);
  layout->addWidget(controls, 1);
  auto* views = new QVBoxLayout;
  feature_view_ = new QLabel("feature maps");
  cam_view_ = new QLabel("Grad-CAM");
  for (auto* v : {feature_view_, cam_view_}) {
    auto* scroll = new QScrollArea;
    scroll->setWidget(v);
    scroll->setWidgetResizable(true);
    views->addWidget(scroll, 1);
  }
  layout->addLayout(views, 3);
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString f =
        QFileDialog::getOpenFileName(this, "Face image", {}, "Images (*.jpg *.jpeg *.png *.bmp)");
    if (!f.isEmpty()) setImage(f);
  });
  for (auto* c : {layer_, method_, target_, colormap_})
    connect(c, &QComboBox::currentTextChanged, this, &InspectPanel::request);
  connect(alpha_, &QDoubleSpinBox::valueChanged, this, &InspectPanel::request);
  connect(models_, &QListWidget::itemChanged, this, &InspectPanel::request);
  connect(image_, &QLineEdit::editingFinished, this, &InspectPanel::request);
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
      [this](const QString&, const QString& m) { message_->setText(m); }, Qt::QueuedConnection);
  refresh();
}

void InspectPanel::refresh() {
  models_->clear();
  try {
    for (const auto& [name, ck] : runCheckpoints(workspace_)) {
      auto* item = new QListWidgetItem(name, models_);
      item->setData(Qt::UserRole, ck);
      item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
      item->setCheckState(models_->count() <= 3 ? Qt::Checked : Qt::Unchecked);
    }
    layer_->blockSignals(true);
    layer_->clear();
    if (models_->count() > 0)
      layer_->addItems(operatorLayers(models_->item(0)->data(Qt::UserRole).toString()));
    layer_->blockSignals(false);
  } catch (const std::exception& e) {
    message_->setText(e.what());
  }
}

void InspectPanel::setImage(const QString& path) {
  image_->setText(path);
  request();
}

void InspectPanel::request() {
  const QString image = image_->text();
  QStringList ckpts;
  for (int i = 0; i < models_->count(); ++i)
    if (models_->item(i)->checkState() == Qt::Checked)
      ckpts << models_->item(i)->data(Qt::UserRole).toString();
  if (image.isEmpty() || ckpts.isEmpty()) return;
  const QString layer = layer_->currentText(), method = method_->currentText(),
                target = target_->currentText(), cmap = colormap_->currentText(),
                ref = reference_->text();
  const double alpha = alpha_->value();
  const QString first = ckpts.front();
  queue_->submit("featuremaps", [=] {
    return featureMapFigure(first, image, layer, 5, cmap == "jet" ? "viridis" : cmap, false);
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
  refresh();
}

void ComparePanel::refresh() {
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
