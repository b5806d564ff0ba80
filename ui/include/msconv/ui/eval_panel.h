// The Evaluation panel: a checkpoint (a run's best or last, or any file) on pair sets and IJB
// folders, in the background: verification and TAR@FAR tables and ROC curves, overlaid per model.
#pragma once

#include <QString>
#include <QWidget>

#include <utility>
#include <vector>

class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QPushButton;
class QTableWidget;
class QThread;

namespace msconv::ui {

struct SetEvaluation;

class EvalPanel : public QWidget {
  Q_OBJECT
 public:
  explicit EvalPanel(QString workspace, QWidget* parent = nullptr);
  ~EvalPanel() override;
  void refresh();      // the runs' checkpoints
  void evaluate();     // the selected checkpoint, in the background
  void evaluateAll();  // every listed checkpoint, one after another, in the background
  QComboBox* checkpointBox() const { return checkpoint_; }
  bool selectRun(const QString& run);  // the run's checkpoint in the list; false when absent
  // Adds a checkpoint file from anywhere (the Open... button); false with a dialog for a file
  // that is not a checkpoint.
  bool addCheckpoint(const QString& path);
  void setDark(bool on);
  QLineEdit* binsEdit() const { return bins_; }

 Q_SIGNALS:
  void evaluated(const QString& label, const std::vector<SetEvaluation>& sets);
  void evaluationFailed(const QString& message);
  void allEvaluated();  // the last of an evaluate() or evaluateAll() is in

 private:
  void show(const QString& label, const std::vector<SetEvaluation>& sets);
  // Starts evaluating (label, file) pairs on a worker thread; refused while one runs.
  void start(const std::vector<std::pair<QString, QString>>& checkpoints);
  void fail(const QString& message);  // the message under the controls and in a dialog
  QString workspace_;
  QComboBox* checkpoint_;
  QLineEdit* bins_;
  QPushButton *run_, *run_all_;
  QLabel* message_;
  QTableWidget* table_;
  QTableWidget* tar_table_;
  QCustomPlot* roc_;
  QThread* worker_ = nullptr;  // the evaluation in progress; null when idle
  bool dark_ = false;
};

}  // namespace msconv::ui
