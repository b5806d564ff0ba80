// The failure browser (a tab of the Evaluation panel): the pairs one model gets wrong at an
// operating point (false accepts and false rejects) or the pairs two models disagree on, sorted by
// margin, each row with both faces, every model's score and decision; selecting a row draws the
// pair CAMs of every model. Built for sets of any size: the list is computed off the GUI thread
// (eval::listFailures on kept per-pair scores, a newer request superseding an older one), the
// table is a QAbstractTableModel, and faces are decoded only for the rows the view asks for, on
// a thread of their own.
#pragma once

#include <QAbstractTableModel>
#include <QHash>
#include <QImage>
#include <QString>
#include <QStringList>
#include <QWidget>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "msconv/eval/failures.h"  // torch-free

class QComboBox;
class QLabel;
class QLineEdit;
class QSpinBox;
class QTableView;

namespace msconv::ui {

class InspectQueue;

// Both faces of a pair, as thumbnails (any thread).
using FaceLoader = std::function<std::pair<QImage, QImage>(int64_t pair)>;

// The rows of a failure list. Faces are asked of the FaceLoader on the model's own thread the
// first time the view asks for a row's picture, newest request first; the row updates when they
// arrive.
class FailureTableModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { kPair, kKind, kLabel, kMargin, kFaceA, kFaceB, kFirstModel };
  explicit FailureTableModel(QObject* parent = nullptr);
  ~FailureTableModel() override;
  // New rows (sorted by margin, largest first), the models' names, the first model's labels.
  void setRows(const QStringList& models, std::vector<eval::FailureRow> rows,
               std::shared_ptr<const std::vector<uint8_t>> labels);
  void setFaceLoader(FaceLoader loader, int thumbnail = 48);  // clears the faces
  const eval::FailureRow& failure(int row) const { return rows_[static_cast<size_t>(row)]; }
  int64_t facesRequested() const { return requested_; }  // pairs whose faces were asked for
  int64_t facesLoaded() const { return loaded_; }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation o, int role) const override;

 Q_SIGNALS:
  void faceLoaded(qint64 pair);

 private:
  void loop();
  void arrived(uint64_t generation, int64_t pair, const QImage& a, const QImage& b);
  QStringList models_;
  std::vector<eval::FailureRow> rows_;
  std::shared_ptr<const std::vector<uint8_t>> labels_;
  QHash<qint64, int> row_of_pair_;
  // Faces: the cache (GUI thread) and the loader's queue (shared with its thread).
  mutable QHash<qint64, std::pair<QImage, QImage>> faces_;
  mutable QHash<qint64, bool> asked_;
  mutable int64_t requested_ = 0;
  int64_t loaded_ = 0;
  int thumbnail_ = 48;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::vector<int64_t> pending_;  // a stack: the newest request first
  FaceLoader loader_;
  uint64_t generation_ = 0;  // under mu_: faces of an older loader are dropped
  bool quit_ = false;
  std::thread thread_;
};

class FailuresView : public QWidget {
  Q_OBJECT
 public:
  explicit FailuresView(QWidget* parent = nullptr);
  ~FailuresView() override;
  // One model's per-pair scores on a set (the Evaluation panel adds each set it evaluates). The
  // set is known by its path; a model added again replaces its scores.
  void addScores(const QString& model, const QString& checkpoint,
                 std::shared_ptr<const eval::PairScores> scores);
  // Lists the failures for the current controls, off the GUI thread (`listed` when in).
  void list();
  // Test and script hooks: the controls.
  void setSet(const QString& path);
  void setModels(const QString& first, const QString& second = {});  // second "": one model
  void setOperatingPoint(const eval::OperatingPoint& op);
  void setTopK(int k);
  void setFaceLoader(FaceLoader loader);  // instead of reading the set's faces
  void selectRow(int row);                // draws the row's pair CAMs (on the InspectQueue)
  FailureTableModel* model() const { return model_; }
  QTableView* table() const { return table_; }
  InspectQueue* queue() const { return queue_; }
  const QImage& camImage() const { return cam_; }
  const eval::FailureList& failures() const { return list_; }

 Q_SIGNALS:
  void listed(int rows);
  void listFailed(const QString& message);
  void camReady();

 private:
  struct Entry {
    QString model, checkpoint;
    std::shared_ptr<const eval::PairScores> scores;
  };
  void fillModels();
  void defaultFaces();
  QString currentSet() const;
  QComboBox *set_, *first_, *second_, *op_, *method_;
  QSpinBox* top_;
  QLineEdit* layers_;
  QLabel *summary_, *cam_view_;
  QTableView* table_;
  FailureTableModel* model_;
  InspectQueue* queue_;
  QImage cam_;
  eval::FailureList list_;
  std::map<QString, std::vector<Entry>> sets_;  // by set path
  bool custom_faces_ = false;
  // The list's worker: one request at a time, a newer one superseding a queued one.
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  uint64_t generation_ = 0;  // GUI thread: the latest request's number
  bool quit_ = false;
  std::thread worker_;
};

}  // namespace msconv::ui
