// The Compare panel: every run of the workspace side by side (operator, parameters, MACs,
// training speed, the last validation's accuracy and TAR@FAR, the EER on each set whose per-pair
// scores the workspace keeps, and, once computed, the CAM faithfulness of each run on a set),
// exported as CSV.
#pragma once

#include <QString>
#include <QWidget>

#include <atomic>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "msconv/ui/engine.h"

class QSpinBox;
class QTableWidget;

namespace msconv::ui {

class ComparePanel : public QWidget {
  Q_OBJECT
 public:
  explicit ComparePanel(QString workspace, QWidget* parent = nullptr);
  ~ComparePanel() override;
  // Re-reads the store and measures each run's model (parameters, MACs): now.
  void refresh();
  // The store changed: refresh now if the panel is on screen, else when it is next shown (the
  // measurement builds every run's model, which start-up need not wait for).
  void invalidate();
  bool exportCsv(const QString& path) const;
  // Grad-CAM faithfulness of every run's checkpoint (the last unit of the last stage) over `n`
  // genuine pairs of `bin`, in the background: the faithfulness columns fill when it is in
  // (`faithfulnessReady`, or `faithfulnessFailed`). Refused while one runs.
  void computeFaithfulness(const QString& bin, int n);
  // A model file (a checkpoint or an ONNX file run by OpenCV) added as a row, evaluated on `bins`
  // in the background (`modelAdded`, or `modelFailed` with the message naming the file).
  void addModelFile(const QString& path, const QStringList& bins);
  QTableWidget* table() const { return table_; }

 Q_SIGNALS:
  void faithfulnessReady();
  void faithfulnessFailed(const QString& message);
  void modelAdded();
  void modelFailed(const QString& message);

 protected:
  void showEvent(QShowEvent* e) override;

 private:
  QString workspace_;
  QTableWidget* table_;
  QSpinBox* faith_n_;
  bool stale_ = true;
  std::map<QString, FaithfulnessRow> faithfulness_;  // by run
  QString faithfulness_set_;
  std::thread faith_thread_;
  std::shared_ptr<std::atomic<bool>> faith_cancel_;  // set when the panel goes
  bool faith_running_ = false;
  std::vector<CompareRow> files_;  // added model files, after the runs
  std::thread file_thread_;
};

}  // namespace msconv::ui
