#include "msconv/ui/runs_panel.h"

#include <QApplication>
#include <QComboBox>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QImage>
#include <QImageReader>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QMenu>
#include <QPainter>
#include <QPixmap>
#include <QPointer>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QStyledItemDelegate>
#include <QTableWidget>
#include <QThread>
#include <QToolButton>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <thread>

#include "msconv/config/config.h"
#include "msconv/data/dataset.h"
#include "msconv/data/ijb.h"
#include "msconv/data/pairs.h"
#include "msconv/error.h"
#include "msconv/eval/metric_name.h"
#include "msconv/store/run_store.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/run_queue.h"
#include "msconv/workspace/workspace.h"

namespace msconv::ui {

namespace {

constexpr int kSortRole = Qt::UserRole + 1;      // the value a column sorts by
constexpr int kOrderRole = Qt::UserRole + 2;     // the row's natural order: ties
constexpr int kStateRole = Qt::UserRole + 3;     // RunState, on the name item
constexpr int kFractionRole = Qt::UserRole + 4;  // progress 0..1 (-1: unknown), progress item
constexpr double kNone = -1e300;                 // the sort value of an empty numeric cell

// A cell that sorts by its kSortRole value (numbers as numbers), ties by the natural order, so
// that the same rows always come out in the same order.
class SortItem : public QTableWidgetItem {
 public:
  using QTableWidgetItem::QTableWidgetItem;
  bool operator<(const QTableWidgetItem& other) const override {
    const QVariant a = data(kSortRole), b = other.data(kSortRole);
    if (a.typeId() == QMetaType::Double && b.typeId() == QMetaType::Double) {
      if (a.toDouble() != b.toDouble()) return a.toDouble() < b.toDouble();
    } else {
      const int c = QString::compare(a.toString(), b.toString(), Qt::CaseInsensitive);
      if (c != 0) return c < 0;
    }
    return data(kOrderRole).toInt() < other.data(kOrderRole).toInt();
  }
};

// The progress cell: a bar with "step / total" over it.
class ProgressDelegate : public QStyledItemDelegate {
 public:
  using QStyledItemDelegate::QStyledItemDelegate;
  void paint(QPainter* painter, const QStyleOptionViewItem& option,
             const QModelIndex& index) const override {
    const double f =
        index.data(kFractionRole).isValid() ? index.data(kFractionRole).toDouble() : -1;
    if (f < 0) {
      QStyledItemDelegate::paint(painter, option, index);
      return;
    }
    QStyleOptionViewItem background = option;
    initStyleOption(&background, index);
    background.text.clear();
    const QWidget* w = option.widget;
    QStyle* style = w ? w->style() : QApplication::style();
    style->drawControl(QStyle::CE_ItemViewItem, &background, painter, w);
    QStyleOptionProgressBar bar;
    bar.rect = option.rect.adjusted(2, 2, -2, -2);
    bar.minimum = 0;
    bar.maximum = 1000;
    bar.progress = static_cast<int>(std::lround(1000 * std::clamp(f, 0.0, 1.0)));
    bar.text = index.data(Qt::DisplayRole).toString();
    bar.textVisible = true;
    bar.textAlignment = Qt::AlignCenter;
    bar.state = option.state | QStyle::State_Horizontal;
    bar.palette = option.palette;
    bar.fontMetrics = option.fontMetrics;
    style->drawControl(QStyle::CE_ProgressBar, &bar, painter, w);
  }
};

QString duration(double s) {
  if (!(s >= 0) || !std::isfinite(s)) return {};
  const qint64 t = static_cast<qint64>(std::llround(s));
  if (t < 60) return QString("%1 s").arg(t);
  if (t < 3600) return QString("%1 min %2 s").arg(t / 60).arg(t % 60, 2, 10, QChar('0'));
  return QString("%1 h %2 min").arg(t / 3600).arg((t % 3600) / 60, 2, 10, QChar('0'));
}

double now() {
  return static_cast<double>(QDateTime::currentMSecsSinceEpoch()) / 1000.0;
}

// Nested JSON objects as "a.b" = value text (the configuration's keys).
void flatten(const QJsonObject& o, const QString& prefix, std::map<QString, QString>& out) {
  for (auto it = o.begin(); it != o.end(); ++it) {
    const QString key = prefix.isEmpty() ? it.key() : prefix + "." + it.key();
    const QJsonValue v = it.value();
    if (v.isObject()) {
      flatten(v.toObject(), key, out);
    } else if (v.isArray()) {
      QStringList items;
      for (const auto& x : v.toArray()) items << x.toString();
      out[key] = items.join(',');
    } else if (v.isBool()) {
      out[key] = v.toBool() ? "true" : "false";
    } else if (v.isDouble()) {
      const double d = v.toDouble();
      out[key] = d == std::floor(d) && std::fabs(d) < 9e15
                     ? QString::number(qint64(d))
                     : QString::number(d, 'g', QLocale::FloatingPointShortest);
    } else {
      out[key] = v.toString();
    }
  }
}

std::map<QString, QString> flatConfig(const std::string& json) {
  std::map<QString, QString> out;
  flatten(QJsonDocument::fromJson(QByteArray::fromStdString(json)).object(), {}, out);
  return out;
}

QString imageSize(const std::string& encoded) {
  const QImage img = QImage::fromData(QByteArray::fromStdString(encoded));
  return img.isNull() ? QString() : QString(", %1x%2").arg(img.width()).arg(img.height());
}

}  // namespace

// The same readers as `msconv data info` (app/msconv/cmd_data.cpp): a .bin pair set, an IJB
// folder (meta/ inside), else a training set (.rec or identity folders).
QString dataSummary(const QString& qpath) {
  namespace fs = std::filesystem;
  const std::string path = qpath.toStdString();
  if (!fs::exists(path) && !fs::exists(path + ".rec"))
    throw Error(path + ": no such file or folder");
  if (fs::path(path).extension() == ".bin") {
    const auto set = data::readPairsBin(path);
    int same = 0;
    for (auto s : set.issame) same += s;
    return QString("pairs: %1 images, %2 pairs (%3 genuine)%4")
        .arg(set.images.size())
        .arg(set.pairs())
        .arg(same)
        .arg(set.images.empty() ? QString() : imageSize(set.images.front()));
  }
  if (fs::is_directory(fs::path(path) / "meta")) {
    const auto set = data::readIjb(path);
    QString size;
    if (!set.faces.empty()) {
      const QSize s = QImageReader(QString::fromStdString(set.imagePath(set.faces[0]))).size();
      if (s.isValid()) size = QString(", %1x%2").arg(s.width()).arg(s.height());
    }
    return QString("ijb %1: %2 templates, %3 images, %4 pairs, %5 medias%6")
        .arg(QString::fromStdString(set.name))
        .arg(set.templates())
        .arg(set.faces.size())
        .arg(set.pairs.size())
        .arg(set.medias())
        .arg(size);
  }
  const auto ds = data::openTrainingSet(path);
  return QString("%1: %2 identities, %3 images%4")
      .arg(QString::fromStdString(ds->kind()))
      .arg(ds->numClasses())
      .arg(ds->size())
      .arg(ds->size() > 0 ? imageSize(ds->encoded(0)) : QString());
}

struct RunsPanel::Row {
  PendingRun p;
  qint64 step = -1, total = 0;
  double samples_per_s = -1, eta_s = -1;
  double accuracy = std::nan(""), tar = std::nan("");
  QString accuracy_name, tar_name, metrics_tip;
  double created = 0, ended = 0;
};

RunsPanel::RunsPanel(QString workspace, QWidget* parent)
    : QWidget(parent), workspace_(std::move(workspace)) {
  auto* layout = new QHBoxLayout(this);

  // ---- Left: the hint of an empty workspace, the runs.
  auto* left = new QWidget;
  auto* left_layout = new QVBoxLayout(left);
  left_layout->setContentsMargins(0, 0, 0, 0);
  hint_ = new QWidget;
  hint_->setObjectName("empty_hint");
  auto* hint_layout = new QVBoxLayout(hint_);
  auto* hint_text = new QLabel(
      "<b>No runs in this workspace yet.</b><br>Launch a run with the New Run form on the right "
      "(the defaults train a tiny network on the embedded synthetic faces in minutes), open a "
      "workspace that has runs (File &gt; Open workspace), or open the demo workspace (three "
      "tiny runs, one per operator, queued: press Train queued).");
  hint_text->setWordWrap(true);
  hint_layout->addWidget(hint_text);
  auto* hint_buttons = new QHBoxLayout;
  auto* hint_open = new QPushButton("Open workspace…");
  hint_open->setObjectName("hint_open");
  auto* hint_launch = new QPushButton("Launch a run");
  hint_launch->setObjectName("hint_launch");
  hint_launch->setToolTip("launches the New Run form's run");
  auto* hint_demo = new QPushButton("Open the demo workspace");
  hint_demo->setObjectName("hint_demo");
  hint_buttons->addWidget(hint_open);
  hint_buttons->addWidget(hint_launch);
  hint_buttons->addWidget(hint_demo);
  hint_buttons->addStretch(1);
  hint_layout->addLayout(hint_buttons);
  left_layout->addWidget(hint_);
  connect(hint_open, &QPushButton::clicked, this, [this] { Q_EMIT openWorkspaceRequested(); });
  connect(hint_demo, &QPushButton::clicked, this, [this] { Q_EMIT openDemoRequested(); });

  table_ = new QTableWidget(0, kColumns);
  table_->setObjectName("runs");
  table_->setHorizontalHeaderLabels({"run", "status", "architecture", "operator", "step",
                                     "progress", "ETA", "samples/s", "accuracy %", "TAR@FAR %",
                                     "elapsed", "error", "order"});
  table_->horizontalHeaderItem(kAccuracy)->setToolTip(
      "verification accuracy of the validation behind best.ckpt (else the last one), on the "
      "first validation set; the cell's tooltip names every set's metric");
  table_->horizontalHeaderItem(kTar)->setToolTip(
      "TAR at FAR 1e-3 (else the lowest FAR logged) of the same validation");
  table_->setColumnHidden(kOrder, true);
  auto* header = table_->horizontalHeader();
  header->setStretchLastSection(true);
  header->setSectionResizeMode(QHeaderView::Interactive);
  // Widths from the widest text each column takes, not from the rows: a refresh never moves them.
  const QFontMetrics fm(table_->font());
  const std::pair<int, const char*> widths[] = {{kName, "msnet-tiny-msconv-official"},
                                                {kStatus, "interrupted"},
                                                {kArch, "msnet-small"},
                                                {kOp, "msconv-official"},
                                                {kSteps, "1000000"},
                                                {kProgress, "1000000 / 1000000"},
                                                {kEta, "10 min 00 s"},
                                                {kSpeed, "samples/s"},
                                                {kAccuracy, "accuracy %"},
                                                {kTar, "TAR@FAR %"},
                                                {kElapsed, "10 h 00 min"}};
  for (const auto& [column, text] : widths)
    table_->setColumnWidth(column, fm.horizontalAdvance(text) + 24);
  table_->setItemDelegateForColumn(kProgress, new ProgressDelegate(table_));
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->verticalHeader()->setVisible(false);
  table_->setWordWrap(false);
  table_->setSortingEnabled(true);
  table_->sortByColumn(kOrder, Qt::AscendingOrder);
  left_layout->addWidget(table_, 1);
  layout->addWidget(left, 2);
  connect(table_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* item) {
    if (item->column() == kName)
      Q_EMIT visibilityChanged(item->text(), item->checkState() == Qt::Checked);
  });
  table_->setContextMenuPolicy(Qt::CustomContextMenu);
  connect(table_, &QTableWidget::customContextMenuRequested, this, [this](const QPoint& at) {
    const int row = table_->rowAt(at.y());
    if (row < 0) return;
    const QString run = cell(row, kName);
    const RunState state = stateOf(row);
    QMenu menu(this);
    std::map<QAction*, RunAction> actions;
    for (RunAction a : actionsFor(state)) actions[menu.addAction(actionLabel(a))] = a;
    QAction* scope =
        hasRunFolder(state) ? menu.addAction("Open in msconv-scope (live telemetry)") : nullptr;
    QAction* copy =
        hasRunFolder(state) ? menu.addAction("Copy settings to the New Run form") : nullptr;
    QAction* chosen = menu.exec(table_->viewport()->mapToGlobal(at));
    if (!chosen) return;
    if (chosen == scope)
      openScope(row);
    else if (chosen == copy)
      copySettingsFrom(run);
    else if (actions.count(chosen))
      Q_EMIT runAction(run, actions[chosen]);
  });

  // ---- Right: the New Run form.
  auto* form_box = new QWidget;
  auto* form = new QFormLayout(form_box);
  arch_ = new QComboBox;
  arch_->setEditable(true);  // any architecture text, e.g. msnet50:width=0.5,blocks=2-2-2-2
  arch_->addItems({"msnet-tiny", "msnet-small", "iresnet-tiny", "iresnet-small", "fasternet-t0",
                   "msnet26", "msnet50", "msnet101", "iresnet18", "iresnet50", "fasternet-s"});
  arch_->setToolTip(
      "a preset or a preset with options: width, blocks (3-4-6-3), G, L, embedding, stem_stride, "
      "prelu=shared|channel");
  op_ = new QComboBox;
  op_->setEditable(true);  // any operator spec, e.g. msconv:kernels=k3k5
  op_->addItems({"msconv-official", "msconv", "skconv", "scconv", "ghost", "ghostv2", "pconv",
                 "star", "conv3x3", "conv"});
  // Data: a line edit with its pickers, the picked set's summary below.
  auto picker = [](const QString& text, const QString& tip) {
    auto* b = new QToolButton;
    b->setText(text);
    b->setToolTip(tip);
    return b;
  };
  train_ = new QLineEdit;
  train_->setPlaceholderText("synthetic (the embedded face set)");
  train_->setToolTip("data.train: a .rec file, a folder of identity folders, or synthetic");
  auto* train_file = picker("file", "choose a RecordIO training set (.rec)");
  train_file->setObjectName("train_file");
  auto* train_folder = picker("folder", "choose a folder of identity folders");
  train_folder->setObjectName("train_folder");
  auto* train_row = new QHBoxLayout;
  train_row->addWidget(train_, 1);
  train_row->addWidget(train_file);
  train_row->addWidget(train_folder);
  train_summary_ = new QLabel;
  train_summary_->setObjectName("train_summary");
  train_summary_->setWordWrap(true);
  val_ = new QLineEdit;
  val_->setPlaceholderText("synthetic (the synthetic set's held-out pairs)");
  val_->setToolTip("data.val: verification .bin files, comma-separated (empty: synthetic)");
  auto* val_file = picker("file", "add a verification pair set (.bin)");
  val_file->setObjectName("val_file");
  auto* val_row = new QHBoxLayout;
  val_row->addWidget(val_, 1);
  val_row->addWidget(val_file);
  val_summary_ = new QLabel;
  val_summary_->setObjectName("val_summary");
  val_summary_->setWordWrap(true);
  epochs_ = new QSpinBox;
  epochs_->setRange(0, 1000000);  // 0 is invalid: the key's own validation names it
  epochs_->setValue(20);
  epochs_->setToolTip("train.epochs");
  steps_ = new QSpinBox;
  steps_->setRange(0, 10000000);
  steps_->setValue(250);
  steps_->setSpecialValueText("epochs decide");
  steps_->setToolTip("train.max_steps: stop after this many steps (0: the epochs decide)");
  batch_ = new QSpinBox;
  batch_->setRange(2, 4096);
  batch_->setValue(64);
  lr_ = new QLineEdit("0.1");
  schedule_ = new QComboBox;
  schedule_->addItems({"cosine", "poly", "constant"});
  schedule_->setToolTip("train.schedule");
  lr_min_ = new QLineEdit;
  lr_min_->setPlaceholderText("5e-6");
  lr_min_->setToolTip("train.lr_min: the floor of the cosine schedule");
  warmup_ = new QLineEdit;
  warmup_->setPlaceholderText("0");
  warmup_->setToolTip("train.warmup_epochs: linear warm-up");
  auto* schedule_row = new QHBoxLayout;
  schedule_row->addWidget(schedule_);
  schedule_row->addWidget(new QLabel("min"));
  schedule_row->addWidget(lr_min_);
  schedule_row->addWidget(new QLabel("warm-up epochs"));
  schedule_row->addWidget(warmup_);
  loss_ = new QComboBox;
  loss_->addItems({"arcface", "cosface", "cml", "combined", "softmax"});
  loss_->setToolTip("loss.type");
  loss_s_ = new QLineEdit;
  loss_s_->setPlaceholderText("64");
  loss_s_->setToolTip("loss.s: the logit scale");
  auto* loss_row = new QHBoxLayout;
  loss_row->addWidget(loss_);
  loss_row->addWidget(new QLabel("scale s"));
  loss_row->addWidget(loss_s_);
  auto* margin_row = new QHBoxLayout;
  const char* margin_tips[] = {"loss.m1: angular multiplier", "loss.m2: additive angular margin",
                               "loss.m3: additive cosine margin"};
  for (int i = 0; i < 3; ++i) {
    margins_[i] = new QLineEdit;
    margins_[i]->setPlaceholderText("preset");
    margins_[i]->setToolTip(QString(margin_tips[i]) + " (empty: the loss preset's)");
    margin_row->addWidget(new QLabel(QString("m%1").arg(i + 1)));
    margin_row->addWidget(margins_[i]);
  }
  seed_ = new QLineEdit("0");
  seed_->setToolTip("seed: of everything random");
  device_ = new QComboBox;
  device_->addItems({"cpu", "cuda", "cuda:0", "cuda:1"});
  device_->setToolTip("train.device");
  threads_ = new QSpinBox;
  threads_->setRange(0, 1024);
  threads_->setSpecialValueText("every core");
  threads_->setToolTip("train.threads: LibTorch intra-op threads (0: every core)");
  auto* device_row = new QHBoxLayout;
  device_row->addWidget(device_);
  device_row->addWidget(new QLabel("threads"));
  device_row->addWidget(threads_, 1);
  processes_ = new QSpinBox;
  processes_->setRange(1, std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  processes_->setValue(1);
  processes_->setToolTip(
      "processes that train the run together, as one run (data-parallel, each with its share of "
      "the cores and of the batch: the batch size must divide evenly)");
  name_ = new QLineEdit;
  name_->setPlaceholderText("msnet-tiny-msconv-official");
  extra_ = new QLineEdit;
  extra_->setPlaceholderText("more key=value settings, separated by spaces");
  form->addRow("architecture", arch_);
  form->addRow("operator", op_);
  form->addRow("training set", train_row);
  form->addRow(train_summary_);
  form->addRow("validation sets", val_row);
  form->addRow(val_summary_);
  form->addRow("epochs", epochs_);
  form->addRow("max steps", steps_);
  form->addRow("batch size", batch_);
  form->addRow("learning rate", lr_);
  form->addRow("LR schedule", schedule_row);
  form->addRow("loss", loss_row);
  form->addRow("margins", margin_row);
  form->addRow("seed", seed_);
  form->addRow("device", device_row);
  form->addRow("processes", processes_);
  form->addRow("name", name_);
  form->addRow("settings", extra_);
  error_ = new QLabel;
  error_->setStyleSheet("color: #d33;");
  error_->setWordWrap(true);
  form->addRow(error_);
  copy_ = new QToolButton;
  copy_->setText("Copy settings from run");
  copy_->setToolTip("fills the form from a run's stored configuration");
  copy_->setPopupMode(QToolButton::InstantPopup);
  auto* copy_menu = new QMenu(copy_);
  copy_->setMenu(copy_menu);
  connect(copy_menu, &QMenu::aboutToShow, this, [this, copy_menu] {
    copy_menu->clear();
    try {
      const workspace::Workspace ws(workspace_.toStdString());
      for (const auto& r : ws.openStore()->runs()) {
        const QString name = QString::fromStdString(r.name);
        copy_menu->addAction(name, this, [this, name] { copySettingsFrom(name); });
      }
    } catch (const Error& e) {
      error_->setText(QString::fromStdString(e.what()));
    }
    if (copy_menu->isEmpty())
      copy_menu->addAction("(no runs in this workspace)")->setEnabled(false);
  });
  launch_ = new QPushButton("Launch");
  launch_->setShortcut(QKeySequence("Ctrl+Return"));
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(copy_);
  buttons->addWidget(launch_, 1);
  form->addRow(buttons);
  auto* scroll = new QScrollArea;
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  scroll->setWidget(form_box);
  layout->addWidget(scroll, 1);

  for (auto* e : {lr_, name_, extra_, train_, val_, loss_s_, lr_min_, warmup_, seed_, margins_[0],
                  margins_[1], margins_[2]})
    connect(e, &QLineEdit::textChanged, this, &RunsPanel::validate);
  for (auto* c : {op_, arch_, schedule_, loss_, device_})
    connect(c, &QComboBox::currentTextChanged, this, &RunsPanel::validate);
  for (auto* s : {batch_, steps_, epochs_, processes_, threads_})
    connect(s, &QSpinBox::valueChanged, this, &RunsPanel::validate);
  connect(train_, &QLineEdit::editingFinished, this,
          [this] { summarise(train_->text().trimmed(), train_summary_); });
  connect(val_, &QLineEdit::editingFinished, this,
          [this] { summarise(val_->text().trimmed(), val_summary_); });
  connect(train_file, &QToolButton::clicked, this, &RunsPanel::pickTrainFile);
  connect(train_folder, &QToolButton::clicked, this, &RunsPanel::pickTrainFolder);
  connect(val_file, &QToolButton::clicked, this, &RunsPanel::pickValFile);
  auto launch = [this] {
    QString error;
    const auto s = settings(&error);
    if (!error.isEmpty()) return;
    Q_EMIT launchRequested(runName(), s, processes());
  };
  connect(launch_, &QPushButton::clicked, this, launch);
  connect(hint_launch, &QPushButton::clicked, this, [this, launch] {
    if (launchEnabled())
      launch();
    else
      error_->setFocus();
  });
  connect(&timer_, &QTimer::timeout, this, &RunsPanel::tick);
  timer_.setInterval(1000);
  validate();  // the table fills on refresh() or setPending()
}

RunsPanel::~RunsPanel() {
  for (QThread* t : summary_threads_) {  // a summary still reading its set: wait, drop it
    t->disconnect(this);
    t->wait();
    delete t;
  }
}

QStringList RunsPanel::settings(QString* error) const {
  QStringList s = {"model.arch=" + arch_->currentText(), "model.op=" + op_->currentText()};
  const QString train = train_->text().trimmed(), val = val_->text().trimmed();
  if (!train.isEmpty()) s << "data.train=" + train;
  if (!val.isEmpty()) s << "data.val=" + val;
  s << "train.epochs=" + QString::number(epochs_->value())
    << "train.max_steps=" + QString::number(steps_->value())
    << "train.batch_size=" + QString::number(batch_->value()) << "train.lr=" + lr_->text().trimmed()
    << "train.schedule=" + schedule_->currentText();
  if (!lr_min_->text().trimmed().isEmpty()) s << "train.lr_min=" + lr_min_->text().trimmed();
  if (!warmup_->text().trimmed().isEmpty()) s << "train.warmup_epochs=" + warmup_->text().trimmed();
  s << "loss.type=" + loss_->currentText();
  if (!loss_s_->text().trimmed().isEmpty()) s << "loss.s=" + loss_s_->text().trimmed();
  for (int i = 0; i < 3; ++i)
    if (!margins_[i]->text().trimmed().isEmpty())
      s << QString("loss.m%1=").arg(i + 1) + margins_[i]->text().trimmed();
  if (!seed_->text().trimmed().isEmpty()) s << "seed=" + seed_->text().trimmed();
  s << "train.device=" + device_->currentText()
    << "train.threads=" + QString::number(threads_->value());
  for (const auto& kv : extra_->text().split(' ', Qt::SkipEmptyParts)) s << kv;
  // The trainer's own validation, key by key, so the message names the key.
  QString message = settingsError(s);
  if (message.isEmpty() && processes() > 1) {
    const int n = processes();
    int64_t batch = batch_->value();  // the last train.batch_size given wins, as in the trainer
    for (const auto& kv : s)
      if (kv.startsWith("train.batch_size=")) batch = kv.mid(17).toLongLong();
    if (batch % n != 0)
      message = QString(
                    "train.batch_size: %1 samples cannot be split evenly over %2 processes; "
                    "use a multiple of %2")
                    .arg(batch)
                    .arg(n);
  }
  if (error) *error = message;
  return message.isEmpty() ? s : QStringList();
}

QString RunsPanel::runName() const {
  return name_->text().isEmpty() ? arch_->currentText() + "-" + op_->currentText() : name_->text();
}

int RunsPanel::processes() const {
  return processes_->value();
}

bool RunsPanel::launchEnabled() const {
  return launch_->isEnabled();
}

void RunsPanel::validate() {
  QString error;
  settings(&error);
  error_->setText(error);
  launch_->setEnabled(error.isEmpty());
}

// ---- Data pickers --------------------------------------------------------------------------

void RunsPanel::pickTrainFile() {
  const QString f = openFileName(this, "Training set", QFileInfo(train_->text()).absolutePath(),
                                 "RecordIO training sets (*.rec);;All files (*)");
  if (f.isEmpty()) return;
  train_->setText(f);
  summarise(f, train_summary_);
}

void RunsPanel::pickTrainFolder() {
  const QString d =
      existingDirectory(this, "Training set (a folder of identity folders)", train_->text());
  if (d.isEmpty()) return;
  train_->setText(d);
  summarise(d, train_summary_);
}

void RunsPanel::pickValFile() {
  const QString f =
      openFileName(this, "Verification pair set", {}, "Pair sets (*.bin);;All files (*)");
  if (f.isEmpty()) return;
  const QString now = val_->text().trimmed();
  val_->setText(now.isEmpty() || now == "synthetic" ? f : now + "," + f);
  summarise(val_->text(), val_summary_);
}

// The summary of data.train or data.val (a comma-separated list) on a thread of its own: a large
// .bin is read whole. "synthetic" needs no reading.
void RunsPanel::summarise(const QString& value, QLabel* label) {
  label->setStyleSheet({});
  if (value.isEmpty() || value == "synthetic") {
    label->setText(value.isEmpty() ? QString() : "the embedded synthetic face set");
    return;
  }
  label->setText("reading " + value + "…");
  label->setProperty("summary_of", value);  // a slower, older summary must not replace this one
  ++summaries_running_;
  QStringList paths;
  for (const auto& p : value.split(',', Qt::SkipEmptyParts)) paths << p.trimmed();
  QPointer<QLabel> target(label);
  auto* thread = QThread::create([this, paths, target, value] {
    QStringList lines;
    bool failed = false;
    for (const auto& p : paths) {
      if (p == "synthetic") {
        lines << "synthetic: the embedded face set";
        continue;
      }
      try {
        lines << QFileInfo(p).fileName() + ": " + dataSummary(p);
      } catch (const std::exception& e) {
        lines << QString::fromStdString(e.what());
        failed = true;
      }
    }
    QMetaObject::invokeMethod(
        this,
        [this, target, lines, failed, value] {
          --summaries_running_;
          if (!target || target->property("summary_of").toString() != value) return;
          target->setText(lines.join("; "));
          target->setStyleSheet(failed ? "color: #d33;" : "color: #555;");
          Q_EMIT summaryReady();
        },
        Qt::QueuedConnection);
  });
  summary_threads_.push_back(thread);
  connect(thread, &QThread::finished, this, [this, thread] {
    summary_threads_.erase(std::remove(summary_threads_.begin(), summary_threads_.end(), thread),
                           summary_threads_.end());
    thread->deleteLater();
  });
  thread->start();
}

// ---- Copy settings from a run -------------------------------------------------------------

bool RunsPanel::copySettingsFrom(const QString& run) {
  std::string json;
  try {
    const workspace::Workspace ws(workspace_.toStdString());
    const auto row = ws.openStore()->run(run.toStdString());
    json = row.config;
    if (json.empty() || json == "{}") {  // the run folder's config.json
      QFile f(QString::fromStdString(ws.runFile(row.name, workspace::RunFile::kConfig)));
      if (f.open(QIODevice::ReadOnly)) json = f.readAll().toStdString();
    }
    // Read as the trainer reads it: a configuration this build cannot take is named.
    config::Config::fromJson(json, run.toStdString() + "'s configuration");
  } catch (const Error& e) {
    error_->setText(QString::fromStdString(e.what()));
    return false;
  }
  std::map<QString, QString> c = flatConfig(json);
  const std::map<QString, QString> defaults = flatConfig(config::Config().toJson());
  auto take = [&c](const QString& key) {
    const auto it = c.find(key);
    if (it == c.end()) return QString();
    const QString v = it->second;
    c.erase(it);
    return v;
  };
  auto setCombo = [](QComboBox* box, const QString& v) {
    if (box->findText(v) < 0) box->addItem(v);
    box->setCurrentText(v);
  };
  arch_->setEditText(take("model.arch"));
  op_->setEditText(take("model.op"));
  train_->setText(take("data.train"));
  val_->setText(take("data.val"));
  epochs_->setValue(take("train.epochs").toInt());
  steps_->setValue(take("train.max_steps").toInt());
  batch_->setValue(take("train.batch_size").toInt());
  lr_->setText(take("train.lr"));
  setCombo(schedule_, take("train.schedule"));
  lr_min_->setText(take("train.lr_min"));
  warmup_->setText(take("train.warmup_epochs"));
  setCombo(loss_, take("loss.type"));
  loss_s_->setText(take("loss.s"));
  for (int i = 0; i < 3; ++i) {
    const QString m = take(QString("loss.m%1").arg(i + 1));
    margins_[i]->setText(m.toDouble() < 0 ? QString() : m);  // -1: the preset's
  }
  seed_->setText(take("seed"));
  setCombo(device_, take("train.device"));
  threads_->setValue(take("train.threads").toInt());
  // Every other key that differs from the defaults: the settings line.
  QStringList extra;
  for (const auto& [k, v] : c) {
    const auto d = defaults.find(k);
    if (d == defaults.end() || d->second != v) extra << k + "=" + v;
  }
  extra_->setText(extra.join(' '));
  name_->clear();  // a new run: its own name
  validate();
  summarise(train_->text().trimmed(), train_summary_);
  summarise(val_->text().trimmed(), val_summary_);
  return error_->text().isEmpty();
}

// ---- The table ----------------------------------------------------------------------------

void RunsPanel::refresh() {
  std::vector<Row> rows;
  for (const auto& p : pending_) rows.push_back({p});
  started_at_.clear();
  try {
    const workspace::Workspace ws(workspace_.toStdString());
    const auto db = ws.openStore();
    for (const auto& r : db->runs()) {
      Row row;
      row.p = {QString::fromStdString(r.name),
               ui::stateOf(r.status),
               QString::fromStdString(r.arch),
               QString::fromStdString(r.op),
               {}};
      if (row.p.state == RunState::kFailed)
        row.p.error = QString::fromStdString(ws.runError(r.name));
      row.created = r.created, row.ended = r.ended;
      started_at_[row.p.name] = r.created;
      // The validation behind best.ckpt (else the last), as the Compare panel takes it.
      int64_t val_step = -1;
      bool of_best = false;
      for (const auto& a : db->artifacts(r.id))
        if (a.kind == "best") val_step = a.step, of_best = true;
      const auto all = db->metrics(r.id);
      if (!of_best)
        for (const auto& m : all)
          if (m.key.rfind("val/", 0) == 0) val_step = std::max(val_step, m.step);
      std::map<std::string, double> metrics;  // MetricName::label() -> value, one per name
      for (const auto& m : all) {
        if (m.key == "loss") row.step = std::max<qint64>(row.step, m.step);
        if (m.key == "samples_per_s") row.samples_per_s = m.value;
        if (m.step != val_step || m.key.rfind("val/", 0) != 0) continue;
        const auto name = eval::MetricName::parse(m.key);
        if (name && name->compared()) metrics[name->label()] = m.value;
      }
      // The first set's accuracy; its TAR at FAR 1e-3, else at the lowest FAR logged.
      std::optional<eval::MetricName> acc, tar;
      for (const auto& [label, v] : metrics) {
        const auto n = eval::MetricName::parse(label);
        if (!n) continue;
        if (n->kind == eval::MetricName::Kind::kAccuracy && !acc) acc = n;
      }
      for (const auto& [label, v] : metrics) {
        const auto n = eval::MetricName::parse(label);
        if (!n || !acc || n->set != acc->set || n->kind != eval::MetricName::Kind::kTarAtFar)
          continue;
        const bool at_1e3 = std::fabs(std::log10(n->far) + 3) < 1e-6;
        if (!tar || at_1e3 || (std::fabs(std::log10(tar->far) + 3) > 1e-6 && n->far < tar->far))
          tar = n;
      }
      if (acc) {
        row.accuracy = metrics[acc->label()];
        row.accuracy_name = QString::fromStdString(acc->label());
      }
      if (tar) {
        row.tar = metrics[tar->label()];
        row.tar_name = QString::fromStdString(tar->label());
      }
      QStringList tip;
      for (const auto& [label, v] : metrics)
        tip << QString("%1 = %2 %").arg(QString::fromStdString(label)).arg(100 * v, 0, 'f', 2);
      if (!tip.isEmpty())
        row.metrics_tip = QString("%1, step %2\n")
                              .arg(of_best ? "best.ckpt" : "last validation")
                              .arg(static_cast<qlonglong>(val_step)) +
                          tip.join('\n');
      // Total steps: a finished run ended at its total; else train.max_steps bounds it (an
      // epoch-decided run trained elsewhere has none until it reports).
      if (row.p.state == RunState::kDone && row.step > 0) {
        row.total = row.step;
      } else {
        try {
          const auto s = config::Config::fromJson(r.config, r.name).settings();
          if (s.train.max_steps > 0) row.total = s.train.max_steps;
        } catch (const std::exception&) {
        }
      }
      rows.push_back(std::move(row));
    }
  } catch (const Error& e) {
    error_->setText(QString::fromStdString(e.what()));
  }
  applyRows(rows);
}

void RunsPanel::applyRows(const std::vector<Row>& rows) {
  // In place, by name: the selection and the sort stay; the sort runs once at the end.
  table_->blockSignals(true);
  table_->setSortingEnabled(false);
  std::map<QString, int> wanted;
  for (size_t i = 0; i < rows.size(); ++i) wanted.emplace(rows[i].p.name, static_cast<int>(i));
  for (int r = table_->rowCount() - 1; r >= 0; --r)
    if (!wanted.count(cell(r, kName))) table_->removeRow(r);
  std::map<QString, int> have;
  for (int r = 0; r < table_->rowCount(); ++r) have[cell(r, kName)] = r;
  bool added = false;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (wanted[rows[i].p.name] != static_cast<int>(i)) continue;  // a name twice: the first
    auto it = have.find(rows[i].p.name);
    int row = 0;
    if (it == have.end()) {
      row = table_->rowCount();
      table_->insertRow(row);
      for (int c = 0; c < kColumns; ++c) table_->setItem(row, c, new SortItem);
      have[rows[i].p.name] = row;
      added = true;
    } else {
      row = it->second;
    }
    for (int c = 0; c < kColumns; ++c)
      table_->item(row, c)->setData(kOrderRole, static_cast<int>(i));
    table_->item(row, kOrder)->setData(kSortRole, static_cast<double>(i));
    fillRow(row, rows[i]);
  }
  table_->setSortingEnabled(true);  // sorts once, by the header's column
  table_->blockSignals(false);
  if (added) fitNameColumn();
  hint_->setVisible(table_->rowCount() == 0);
  bool running = false;
  for (int r = 0; r < table_->rowCount(); ++r) running |= stateOf(r) == RunState::kRunning;
  if (running && !timer_.isActive()) timer_.start();
  if (!running) timer_.stop();
}

void RunsPanel::fillRow(int row, const Row& r) {
  const PendingRun& p = r.p;
  auto* name = table_->item(row, kName);
  const bool fresh = !(name->flags() & Qt::ItemIsUserCheckable);
  name->setText(p.name);
  name->setData(kSortRole, p.name);
  name->setData(kStateRole, static_cast<int>(p.state));
  if (fresh) {  // visibility survives a refresh
    name->setFlags(name->flags() | Qt::ItemIsUserCheckable);
    name->setCheckState(Qt::Checked);
    name->setToolTip("checked: drawn on the charts");
  }
  if (colour_of_) {
    QPixmap swatch(12, 12);
    swatch.fill(colour_of_(p.name));
    name->setData(Qt::DecorationRole, swatch);
  }
  auto text = [&](int c, const QString& t) {
    table_->item(row, c)->setText(t);
    table_->item(row, c)->setData(kSortRole, t);
  };
  auto number = [&](int c, double v, const QString& t) {
    table_->item(row, c)->setText(t);
    table_->item(row, c)->setData(kSortRole, v);
  };
  text(kStatus, stateName(p.state));
  text(kArch, p.arch);
  text(kOp, p.op);
  text(kError, p.error);
  if (const auto it = live_.find(p.name);
      it != live_.end() && !it->second.preparing.isEmpty() && p.state == RunState::kRunning) {
    text(kStatus, QString("preparing %1 %").arg(it->second.preparing_percent));
    text(kError, it->second.preparing);
  }
  // Live values of a run this window trains win over the store's (it logs every log_every).
  Row v = r;
  if (const auto it = live_.find(p.name); it != live_.end()) {
    const Live& l = it->second;
    if (l.step >= v.step) {
      v.step = l.step;
      if (l.samples_per_s >= 0) v.samples_per_s = l.samples_per_s;
      v.eta_s = l.eta_s;
    }
    if (l.total > 0) v.total = l.total;
  }
  number(kSteps, v.step >= 0 ? static_cast<double>(v.step) : kNone,
         v.step >= 0 ? QString::number(v.step) : QString());
  const bool has_progress = v.step >= 0 || v.total > 0;
  const double fraction =
      v.total > 0 ? static_cast<double>(std::max<qint64>(v.step, 0)) / static_cast<double>(v.total)
                  : -1;
  number(kProgress, fraction >= 0 ? fraction : kNone,
         has_progress ? QString("%1 / %2")
                            .arg(std::max<qint64>(v.step, 0))
                            .arg(v.total > 0 ? QString::number(v.total) : QString("?"))
                      : QString());
  table_->item(row, kProgress)->setData(kFractionRole, fraction);
  const bool running = p.state == RunState::kRunning;
  double eta = running ? v.eta_s : -1;
  if (const auto it = live_.find(p.name);
      running && eta < 0 && it != live_.end() && !it->second.preparing.isEmpty())
    eta = it->second.preparing_eta;                                      // still preparing its data
  if (running && eta < 0 && v.total > 0 && v.step > 0 && r.created > 0)  // trained elsewhere
    eta = (now() - r.created) / static_cast<double>(v.step) * static_cast<double>(v.total - v.step);
  number(kEta, eta >= 0 ? eta : kNone, running ? duration(eta) : QString());
  number(kSpeed, v.samples_per_s >= 0 ? v.samples_per_s : kNone,
         v.samples_per_s >= 0 ? QString::number(v.samples_per_s, 'f', 1) : QString());
  number(kAccuracy, std::isnan(v.accuracy) ? kNone : v.accuracy,
         std::isnan(v.accuracy) ? QString() : QString::number(100 * v.accuracy, 'f', 2));
  number(kTar, std::isnan(v.tar) ? kNone : v.tar,
         std::isnan(v.tar) ? QString() : QString::number(100 * v.tar, 'f', 2));
  table_->item(row, kAccuracy)->setToolTip(v.metrics_tip);
  table_->item(row, kTar)->setToolTip(v.tar_name.isEmpty() ? QString()
                                                           : v.tar_name + "\n" + v.metrics_tip);
  const double elapsed =
      r.created > 0 ? (running ? now() : (r.ended > 0 ? r.ended : -1)) - r.created : -1;
  number(kElapsed, elapsed >= 0 ? elapsed : kNone, elapsed >= 0 ? duration(elapsed) : QString());
  for (int c = kStatus; c < kColumns; ++c) {
    auto* item = table_->item(row, c);
    item->setForeground(p.error.isEmpty() ? QBrush() : QBrush(QColor(211, 51, 51)));
    if (!p.error.isEmpty()) item->setToolTip(p.error);
  }
}

void RunsPanel::fitNameColumn() {
  // Grows for a longer name, never shrinks: the columns stay where the eye left them.
  const QFontMetrics fm(table_->font());
  int want = table_->columnWidth(kName);
  for (int r = 0; r < table_->rowCount(); ++r)
    want = std::max(want, fm.horizontalAdvance(cell(r, kName)) + 48);  // checkbox and swatch
  table_->setColumnWidth(kName, std::min(want, 360));
}

void RunsPanel::runPreparing(const QString& run, const QString& what, qint64 done, qint64 total) {
  Live& l = live_[run];
  l.preparing = QString("%1: %2 of %3 images").arg(what).arg(done).arg(total);
  l.preparing_percent = total > 0 ? static_cast<int>(100 * done / total) : 0;
  // The ETA from the rate since the first report (the first chunk's time is not counted).
  const double now = QDateTime::currentMSecsSinceEpoch() / 1000.0;
  if (l.preparing_since < 0) {
    l.preparing_since = now;
    l.preparing_first = done;
  } else if (done > l.preparing_first) {
    l.preparing_eta = (now - l.preparing_since) / static_cast<double>(done - l.preparing_first) *
                      static_cast<double>(total - done);
  }
  const int row = rowOf(run);
  if (row < 0) return;
  table_->setSortingEnabled(false);
  table_->item(row, kStatus)->setText(QString("preparing %1 %").arg(l.preparing_percent));
  table_->item(row, kError)->setText(l.preparing);
  table_->item(row, kEta)->setText(l.preparing_eta >= 0 ? duration(l.preparing_eta) : QString());
  table_->setSortingEnabled(true);
}

void RunsPanel::runStarted(const QString& run, qint64 total_steps) {
  Live& l = live_[run];
  l.total = total_steps;
  l.preparing.clear();
  l.preparing_percent = -1;
  refresh();  // the store holds the run now
}

void RunsPanel::runStep(const QString& run, qint64 step, qint64 total_steps, double samples_per_s,
                        double eta_s) {
  Live& l = live_[run];
  l.step = step;
  if (total_steps > 0) l.total = total_steps;
  l.samples_per_s = samples_per_s;
  l.eta_s = eta_s;
  const int row = rowOf(run);
  if (row < 0) return;  // not listed yet: the next refresh shows it
  updateLiveCells(row, run);
}

// The live columns of one row, in place. The sort follows only when the sorted column changed.
void RunsPanel::updateLiveCells(int row, const QString& run) {
  const auto it = live_.find(run);
  if (it == live_.end()) return;
  const Live& l = it->second;
  table_->setSortingEnabled(false);
  auto number = [&](int c, double v, const QString& t) {
    table_->item(row, c)->setText(t);
    table_->item(row, c)->setData(kSortRole, v);
  };
  number(kSteps, static_cast<double>(l.step), QString::number(l.step));
  const double fraction =
      l.total > 0 ? static_cast<double>(l.step) / static_cast<double>(l.total) : -1;
  number(kProgress, fraction >= 0 ? fraction : kNone,
         QString("%1 / %2").arg(l.step).arg(l.total > 0 ? QString::number(l.total) : "?"));
  table_->item(row, kProgress)->setData(kFractionRole, fraction);
  if (stateOf(row) == RunState::kRunning)
    number(kEta, l.eta_s >= 0 ? l.eta_s : kNone, duration(l.eta_s));
  if (l.samples_per_s >= 0)
    number(kSpeed, l.samples_per_s, QString::number(l.samples_per_s, 'f', 1));
  // Sorting again: rows move only when the sorted column's values changed (ties keep their order).
  table_->setSortingEnabled(true);
}

void RunsPanel::tick() {
  bool elsewhere = false;  // a running run that this window does not train: the store tells
  table_->setSortingEnabled(false);
  for (int r = 0; r < table_->rowCount(); ++r) {
    if (stateOf(r) != RunState::kRunning) continue;
    const QString run = cell(r, kName);
    elsewhere |= !live_.count(run);
    const auto at = started_at_.find(run);
    if (at == started_at_.end() || at->second <= 0) continue;
    const double elapsed = now() - at->second;
    table_->item(r, kElapsed)->setText(duration(elapsed));
    table_->item(r, kElapsed)->setData(kSortRole, elapsed);
  }
  table_->setSortingEnabled(true);
  if (elsewhere && ++ticks_ % 5 == 0) refresh();
}

void RunsPanel::setPending(std::vector<PendingRun> pending) {
  pending_ = std::move(pending);
  refresh();
}

QString RunsPanel::cell(int row, int column) const {
  const auto* item = table_->item(row, column);
  return item ? item->text() : QString();
}

int RunsPanel::rowOf(const QString& run) const {
  for (int r = 0; r < table_->rowCount(); ++r)
    if (cell(r, kName) == run) return r;
  return -1;
}

QStringList RunsPanel::runOrder() const {
  QStringList out;
  for (int r = 0; r < table_->rowCount(); ++r) out << cell(r, kName);
  return out;
}

QString RunsPanel::selectedRun() const {
  const auto rows = table_->selectionModel()->selectedRows();
  return rows.isEmpty() ? QString() : cell(rows.front().row(), kName);
}

void RunsPanel::selectRun(const QString& run) {
  const int row = rowOf(run);
  if (row >= 0) table_->selectRow(row);
}

void RunsPanel::sortBy(int column, Qt::SortOrder order) {
  table_->sortByColumn(column, order);
}

void RunsPanel::setRunVisible(int row, bool visible) {
  if (auto* item = table_->item(row, kName))
    item->setCheckState(visible ? Qt::Checked : Qt::Unchecked);  // emits through itemChanged
}

int RunsPanel::rowCount() const {
  return table_->rowCount();
}

QString RunsPanel::runDir(int row) const {
  const auto* item = table_->item(row, 0);
  return item ? QString::fromStdString(workspace::Workspace(workspace_.toStdString())
                                           .runDir(item->text().toStdString()))
              : QString();
}

RunState RunsPanel::stateOf(int row) const {
  const auto* item = table_->item(row, kName);
  return item && item->data(kStateRole).isValid()
             ? static_cast<RunState>(item->data(kStateRole).toInt())
             : RunState::kUnknown;
}

void RunsPanel::openScope(int row) {
  const QString dir = runDir(row);
  if (!dir.isEmpty()) Q_EMIT scopeRequested(dir);
}

}  // namespace msconv::ui
