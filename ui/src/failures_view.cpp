#include "msconv/ui/failures_view.h"

#include <QComboBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QPixmap>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

#include "msconv/error.h"
#include "msconv/ui/engine.h"

namespace msconv::ui {
namespace {
// Faces asked for but not yet decoded beyond this many: the oldest requests are dropped (their
// rows scrolled out of view long ago; they are asked again when seen again).
constexpr size_t kMaxPending = 256;
// Decoded faces kept; beyond this the cache starts again.
constexpr int kMaxFaces = 4000;
}  // namespace

// ---- FailureTableModel -------------------------------------------------------------------------

FailureTableModel::FailureTableModel(QObject* parent) : QAbstractTableModel(parent) {
  thread_ = std::thread([this] { loop(); });
}

FailureTableModel::~FailureTableModel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void FailureTableModel::setRows(const QStringList& models, std::vector<eval::FailureRow> rows,
                                std::shared_ptr<const std::vector<uint8_t>> labels) {
  beginResetModel();
  models_ = models;
  rows_ = std::move(rows);
  labels_ = std::move(labels);
  row_of_pair_.clear();
  row_of_pair_.reserve(static_cast<int>(rows_.size()));
  for (size_t r = 0; r < rows_.size(); ++r)
    row_of_pair_.insert(static_cast<qint64>(rows_[r].pair), static_cast<int>(r));
  endResetModel();
}

void FailureTableModel::setFaceLoader(FaceLoader loader, int thumbnail) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    loader_ = std::move(loader);
    ++generation_;
    pending_.clear();
  }
  thumbnail_ = thumbnail;
  faces_.clear();
  asked_.clear();
  if (!rows_.empty())
    Q_EMIT dataChanged(index(0, kFaceA), index(rowCount() - 1, kFaceB), {Qt::DecorationRole});
}

int FailureTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int FailureTableModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : kFirstModel + 2 * static_cast<int>(models_.size());
}

QVariant FailureTableModel::headerData(int section, Qt::Orientation o, int role) const {
  if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case kPair:
      return "pair";
    case kKind:
      return "kind";
    case kLabel:
      return "label";
    case kMargin:
      return "margin";
    case kFaceA:
      return "face A";
    case kFaceB:
      return "face B";
    default:
      break;
  }
  const int m = (section - kFirstModel) / 2;
  if (m < 0 || m >= models_.size()) return {};
  return models_[m] + ((section - kFirstModel) % 2 ? " decision" : " score");
}

QVariant FailureTableModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const auto& r = rows_[static_cast<size_t>(index.row())];
  const int c = index.column();
  if (c == kFaceA || c == kFaceB) {
    if (role == Qt::SizeHintRole) return QSize(thumbnail_ + 6, thumbnail_ + 6);
    if (role != Qt::DecorationRole) return {};
    const auto it = faces_.constFind(r.pair);
    if (it != faces_.constEnd()) return c == kFaceA ? it->first : it->second;
    if (!asked_.contains(r.pair)) {  // first sight of this row: ask the loader's thread
      asked_.insert(r.pair, true);
      ++requested_;
      {
        std::lock_guard<std::mutex> lock(mu_);
        pending_.push_back(r.pair);
        if (pending_.size() > kMaxPending) {
          const size_t drop = pending_.size() - kMaxPending;
          for (size_t i = 0; i < drop; ++i) asked_.remove(pending_[i]);
          pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(drop));
        }
      }
      cv_.notify_one();
    }
    return {};
  }
  if (role == Qt::TextAlignmentRole)
    return c == kKind || c == kLabel ? QVariant() : QVariant(Qt::AlignRight | Qt::AlignVCenter);
  if (role != Qt::DisplayRole) return {};
  switch (c) {
    case kPair:
      return static_cast<qlonglong>(r.pair);
    case kKind:
      return QString(eval::failureKindName(r.kind));
    case kLabel:
      if (!labels_ || static_cast<size_t>(r.pair) >= labels_->size()) return {};
      return (*labels_)[static_cast<size_t>(r.pair)] ? "genuine" : "impostor";
    case kMargin:
      return QString::number(r.margin, 'f', 4);
    default:
      break;
  }
  const int m = (c - kFirstModel) / 2;
  if (m < 0 || static_cast<size_t>(m) >= r.scores.size()) return {};
  if ((c - kFirstModel) % 2 == 0) return QString::number(r.scores[static_cast<size_t>(m)], 'f', 4);
  return static_cast<size_t>(m) < r.accepted.size() && r.accepted[static_cast<size_t>(m)]
             ? "accept"
             : "reject";
}

void FailureTableModel::loop() {
  for (;;) {
    int64_t pair = 0;
    uint64_t generation = 0;
    FaceLoader load;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return quit_ || (!pending_.empty() && loader_); });
      if (quit_) return;
      pair = pending_.back();
      pending_.pop_back();
      generation = generation_;
      load = loader_;
    }
    std::pair<QImage, QImage> faces;
    try {
      faces = load(pair);
    } catch (const std::exception&) {  // an undecodable face: the row shows none
    }
    QMetaObject::invokeMethod(
        this,
        [this, generation, pair, faces] { arrived(generation, pair, faces.first, faces.second); },
        Qt::QueuedConnection);
  }
}

void FailureTableModel::arrived(uint64_t generation, int64_t pair, const QImage& a,
                                const QImage& b) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (generation != generation_) return;  // faces of a set no longer shown
  }
  if (faces_.size() >= kMaxFaces) {
    faces_.clear();
    asked_.clear();
  }
  faces_.insert(pair, {a, b});
  asked_.insert(pair, true);
  ++loaded_;
  const auto it = row_of_pair_.constFind(pair);
  if (it != row_of_pair_.constEnd())
    Q_EMIT dataChanged(index(*it, kFaceA), index(*it, kFaceB), {Qt::DecorationRole});
  Q_EMIT faceLoaded(pair);
}

// ---- FailuresView ------------------------------------------------------------------------------

FailuresView::FailuresView(QWidget* parent) : QWidget(parent) {
  qRegisterMetaType<qint64>("qint64");
  queue_ = new InspectQueue(this);
  model_ = new FailureTableModel(this);
  auto* layout = new QVBoxLayout(this);
  auto* row = new QHBoxLayout;
  set_ = new QComboBox;
  set_->setObjectName("failure_set");
  set_->setMinimumWidth(160);
  first_ = new QComboBox;
  first_->setObjectName("failure_first");
  second_ = new QComboBox;
  second_->setObjectName("failure_second");
  second_->setToolTip("a second model: the pairs the two disagree on");
  op_ = new QComboBox;
  op_->setObjectName("failure_operating_point");
  for (double far : {1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6})
    op_->addItem(QString("FAR %1").arg(far, 0, 'g', 1), far);
  op_->addItem("thresholds from folds", -1.0);
  op_->setCurrentIndex(2);
  op_->setToolTip(
      "accept when the score reaches the threshold at this FAR (each model its own), "
      "or as the 10-fold protocol decides (.bin sets)");
  top_ = new QSpinBox;
  top_->setRange(1, 10000000);
  top_->setValue(100);
  top_->setToolTip("rows of each kind, largest margin first");
  auto* go = new QPushButton("List");
  row->addWidget(new QLabel("set"));
  row->addWidget(set_, 1);
  row->addWidget(new QLabel("model A"));
  row->addWidget(first_, 1);
  row->addWidget(new QLabel("model B"));
  row->addWidget(second_, 1);
  row->addWidget(op_);
  row->addWidget(new QLabel("top"));
  row->addWidget(top_);
  row->addWidget(go);
  layout->addLayout(row);
  summary_ = new QLabel("evaluate a checkpoint: its failures are listed here");
  summary_->setObjectName("failure_summary");
  summary_->setWordWrap(true);
  layout->addWidget(summary_);
  auto* split = new QSplitter(Qt::Vertical);
  table_ = new QTableView;
  table_->setObjectName("failures");
  table_->setModel(model_);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
  table_->verticalHeader()->setDefaultSectionSize(54);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setIconSize(QSize(48, 48));
  split->addWidget(table_);
  auto* cam_box = new QWidget;
  auto* cam_layout = new QVBoxLayout(cam_box);
  cam_layout->setContentsMargins(0, 0, 0, 0);
  auto* cam_row = new QHBoxLayout;
  method_ = new QComboBox;
  method_->addItems(
      {"gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam"});
  layers_ = new QLineEdit;
  layers_->setPlaceholderText("layers, comma-separated (empty: the last unit of each stage)");
  cam_row->addWidget(new QLabel("pair CAM"));
  cam_row->addWidget(method_);
  cam_row->addWidget(layers_, 1);
  cam_layout->addLayout(cam_row);
  cam_view_ = new QLabel("select a row: each image's CAM for its cosine similarity to the other");
  cam_view_->setAlignment(Qt::AlignLeft | Qt::AlignTop);
  auto* scroll = new QScrollArea;
  scroll->setWidget(cam_view_);
  scroll->setWidgetResizable(true);
  cam_layout->addWidget(scroll, 1);
  split->addWidget(cam_box);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  layout->addWidget(split, 1);

  connect(go, &QPushButton::clicked, this, &FailuresView::list);
  connect(set_, &QComboBox::currentIndexChanged, this, [this] {
    fillModels();
    if (!custom_faces_) defaultFaces();
    list();
  });
  for (auto* c : {first_, second_, op_})
    connect(c, &QComboBox::activated, this, &FailuresView::list);
  connect(table_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
          [this](const QModelIndex& current) {
            if (current.isValid()) selectRow(current.row());
          });
  connect(method_, &QComboBox::activated, this, [this] {
    if (table_->currentIndex().isValid()) selectRow(table_->currentIndex().row());
  });
  connect(
      queue_, &InspectQueue::ready, this,
      [this](const QString&, const QImage& img) {
        cam_ = img;
        cam_view_->setPixmap(QPixmap::fromImage(img));
        Q_EMIT camReady();
      },
      Qt::QueuedConnection);
  connect(
      queue_, &InspectQueue::failed, this,
      [this](const QString&, const QString& m) { cam_view_->setText("pair CAM: " + m); },
      Qt::QueuedConnection);
  worker_ = std::thread([this] {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return quit_ || job_; });
        if (quit_) return;
        job = std::move(job_);
        job_ = nullptr;
      }
      job();
    }
  });
}

FailuresView::~FailuresView() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

QString FailuresView::currentSet() const {
  return set_->currentData().toString();
}

void FailuresView::addScores(const QString& model, const QString& checkpoint,
                             std::shared_ptr<const eval::PairScores> scores) {
  if (!scores) return;
  const QString path = QString::fromStdString(scores->set_path);
  auto& entries = sets_[path];
  bool replaced = false;
  for (auto& e : entries)
    if (e.model == model) e = {model, checkpoint, scores}, replaced = true;
  if (!replaced) entries.push_back({model, checkpoint, scores});
  if (set_->findData(path) < 0) {
    set_->addItem(QString::fromStdString(scores->set), path);  // the first selects it, lists it
    return;
  }
  if (path == currentSet()) {
    fillModels();
    list();
  }
}

void FailuresView::fillModels() {
  const QString a = first_->currentText(), b = second_->currentText();
  first_->clear();
  second_->clear();
  second_->addItem("(none)");
  const auto it = sets_.find(currentSet());
  if (it == sets_.end()) return;
  for (const auto& e : it->second) {
    first_->addItem(e.model);
    second_->addItem(e.model);
  }
  if (first_->findText(a) >= 0) first_->setCurrentText(a);
  if (second_->findText(b) >= 0) second_->setCurrentText(b);
}

void FailuresView::defaultFaces() {
  const auto it = sets_.find(currentSet());
  if (it == sets_.end() || it->second.empty()) return;
  const auto scores = it->second.front().scores;
  const QString path = QString::fromStdString(scores->set_path);
  const bool ijb = scores->is_ijb;
  model_->setFaceLoader([path, ijb, scores](int64_t pair) {
    const auto p = static_cast<size_t>(pair);
    const int64_t a = ijb ? scores->t1.at(p) : 2 * pair, b = ijb ? scores->t2.at(p) : 2 * pair + 1;
    return std::make_pair(setFace(path, ijb, a, 48), setFace(path, ijb, b, 48));
  });
}

void FailuresView::setSet(const QString& path) {
  const int at = set_->findData(path);
  if (at >= 0) set_->setCurrentIndex(at);
}

void FailuresView::setModels(const QString& first, const QString& second) {
  first_->setCurrentText(first);
  second_->setCurrentIndex(second.isEmpty() ? 0 : std::max(0, second_->findText(second)));
}

void FailuresView::setOperatingPoint(const eval::OperatingPoint& op) {
  if (op.from_folds) {
    op_->setCurrentIndex(op_->count() - 1);
    return;
  }
  int at = op_->findData(op.far);
  if (at < 0) {
    op_->insertItem(op_->count() - 1, QString("FAR %1").arg(op.far, 0, 'g', 3), op.far);
    at = op_->findData(op.far);
  }
  op_->setCurrentIndex(at);
}

void FailuresView::setTopK(int k) {
  top_->setValue(k);
}

void FailuresView::setFaceLoader(FaceLoader loader) {
  custom_faces_ = static_cast<bool>(loader);
  if (loader)
    model_->setFaceLoader(std::move(loader));
  else
    defaultFaces();
}

void FailuresView::list() {
  const auto it = sets_.find(currentSet());
  if (it == sets_.end() || first_->currentIndex() < 0) return;
  std::vector<Entry> chosen;
  for (const auto& e : it->second)
    if (e.model == first_->currentText()) chosen.push_back(e);
  if (second_->currentIndex() > 0 && second_->currentText() != first_->currentText())
    for (const auto& e : it->second)
      if (e.model == second_->currentText()) chosen.push_back(e);
  if (chosen.empty()) return;
  eval::OperatingPoint op;
  const double far = op_->currentData().toDouble();
  op.from_folds = far < 0;
  if (!op.from_folds) op.far = far;
  const int top = top_->value();
  const uint64_t generation = ++generation_;
  summary_->setText("listing...");
  auto job = [this, chosen, op, top, generation] {
    std::vector<const eval::PairScores*> models;
    QStringList names;
    for (const auto& e : chosen) {
      models.push_back(e.scores.get());
      names << e.model;
    }
    try {
      auto list = std::make_shared<eval::FailureList>(eval::listFailures(models, op, top));
      std::stable_sort(
          list->rows.begin(), list->rows.end(),
          [](const eval::FailureRow& a, const eval::FailureRow& b) { return a.margin > b.margin; });
      // The labels: the first model's, shared with its scores.
      std::shared_ptr<const std::vector<uint8_t>> labels(chosen.front().scores,
                                                         &chosen.front().scores->label);
      QMetaObject::invokeMethod(
          this,
          [this, generation, list, names, labels] {
            if (generation != generation_) return;  // a newer request is on its way
            std::vector<eval::FailureRow> rows = std::move(list->rows);
            list_ = std::move(*list);
            list_.rows.clear();
            const int n = static_cast<int>(rows.size());
            model_->setRows(names, std::move(rows), labels);
            table_->resizeColumnsToContents();
            QStringList thresholds;
            for (int m = 0; m < names.size() && m < static_cast<int>(list_.thresholds.size());
                 ++m) {
              const double t = list_.thresholds[static_cast<size_t>(m)];
              thresholds << names[m] + " " +
                                (std::isnan(t) ? QString("per fold") : QString::number(t, 'f', 4));
            }
            QString text = "thresholds: " + thresholds.join(", ");
            text += QString("; %1: %2 false accepts, %3 false rejects")
                        .arg(names.front())
                        .arg(list_.false_accepts)
                        .arg(list_.false_rejects);
            if (names.size() > 1)
              text += QString("; %1 right and %2 wrong: %3, the reverse: %4")
                          .arg(names[0], names[1])
                          .arg(list_.only_first_right)
                          .arg(list_.only_second_right);
            summary_->setText(text + QString("; %1 rows").arg(n));
            Q_EMIT listed(n);
          },
          Qt::QueuedConnection);
    } catch (const std::exception& e) {
      const QString m = e.what();
      QMetaObject::invokeMethod(
          this,
          [this, generation, m] {
            if (generation != generation_) return;
            summary_->setText(m);
            Q_EMIT listFailed(m);
          },
          Qt::QueuedConnection);
    }
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = std::move(job);  // a queued, not yet started request is superseded
  }
  cv_.notify_one();
}

void FailuresView::selectRow(int row) {
  if (row < 0 || row >= model_->rowCount()) return;
  const auto it = sets_.find(currentSet());
  if (it == sets_.end()) return;
  const int64_t pair = model_->failure(row).pair;
  QStringList checkpoints;
  for (const auto& e : it->second)
    if (!e.checkpoint.isEmpty()) checkpoints << e.checkpoint;
  if (checkpoints.isEmpty()) return;
  if (it->second.front().scores->is_ijb) {
    cam_view_->setText("pair CAMs are drawn for .bin pair sets");
    return;
  }
  const QString bin = currentSet(), method = method_->currentText();
  QStringList layers;
  for (const auto& l : layers_->text().split(',', Qt::SkipEmptyParts)) layers << l.trimmed();
  cam_view_->setText(QString("pair %1: computing...").arg(pair));
  queue_->submit("paircam",
                 [=] { return pairCamFigure(checkpoints, bin, pair, method, layers, "jet", 0.5); });
}

}  // namespace msconv::ui
