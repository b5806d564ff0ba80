// The Evaluation panel: a checkpoint (a run's best or last, or any file) on pair sets and IJB
// folders, in the background: verification (with EER), TAR@FAR tables, ROC and DET curves
// overlaid per model, the selected evaluation's genuine / impostor score histograms with the
// threshold at a chosen FAR, and the failure browser (failures_view.h) on the kept per-pair
// scores.
#pragma once

#include <QElapsedTimer>
#include <QString>
#include <QWidget>

#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "msconv/ui/engine.h"

class QColor;
class QComboBox;
class QCustomPlot;
class QTabWidget;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;
class QThread;

namespace msconv::ui {

class FailuresView;

// The DET chart (the Evaluation panel's and the report's): FNMR against FMR on normal-deviate
// axes, ticks labelled in percent (0.01 %, 0.1 %, 1 %, 5 %, 20 %, 50 %, ...).
void setupDetPlot(QCustomPlot* p);
// One curve: the points with FMR and FNMR in (0, 1) (the others are off the axes); then the axes
// fit every curve.
void addDetCurve(QCustomPlot* p, const QString& name, const QColor& colour,
                 const std::vector<double>& fmr, const std::vector<double>& fnmr);
// Genuine and impostor score histograms as two step curves, the threshold a vertical line.
void drawScoreHistogram(QCustomPlot* p, const eval::ScoreHistogram& h, const QString& title);

class EvalPanel : public QWidget {
  Q_OBJECT
 public:
  explicit EvalPanel(QString workspace, QWidget* parent = nullptr);
  ~EvalPanel() override;
  void refresh();      // the runs' checkpoints
  void evaluate();     // the selected checkpoint, in the background
  void evaluateAll();  // every listed checkpoint, one after another, in the background
  // The evaluation in progress: a progress bar with the ETA over its units (each checkpoint on
  // each set given, or on its own validation sets when none is given) and Cancel. Cancel stops it
  // before the next unit; the one in progress finishes (eval::evaluateCheckpoint has no
  // progress or cancel hook inside a set), its result dropped.
  void cancel();
  bool busy() const { return worker_ != nullptr; }
  QProgressBar* progressBar() const { return progress_; }
  QLabel* progressLabel() const { return progress_label_; }
  QPushButton* cancelButton() const { return cancel_; }
  QComboBox* checkpointBox() const { return checkpoint_; }
  bool selectRun(const QString& run);  // the run's checkpoint in the list; false when absent
  // Adds a checkpoint file from anywhere (the Open... button); false with a dialog for a file
  // that is not a checkpoint.
  bool addCheckpoint(const QString& path);
  void setDark(bool on);
  QLineEdit* binsEdit() const { return bins_; }
  FailuresView* failures() const { return failures_; }
  // The score histograms: of evaluation `index` (in the order shown), threshold at `far`.
  void showHistogram(int index, double far);
  double histogramThreshold() const { return histogram_threshold_; }

 Q_SIGNALS:
  void evaluated(const QString& label, const std::vector<SetEvaluation>& sets);
  void evaluationFailed(const QString& message);
  void allEvaluated();  // the last of an evaluate() or evaluateAll() is in (or it was cancelled)
  void progressed(int done, int total);  // units evaluated (from the worker thread, queued)
  // Within a unit: images of `set` embedded so far (from the worker thread, queued).
  void setProgressed(const QString& set, qint64 done, qint64 total);

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
  QCustomPlot* det_;
  QCustomPlot* histogram_;
  QComboBox* histogram_of_;
  QComboBox* histogram_far_;
  QTabWidget* tabs_;
  FailuresView* failures_;
  std::vector<std::pair<QString, SetEvaluation>> shown_;  // every evaluation shown, in order
  double histogram_threshold_ = 0;
  QThread* worker_ = nullptr;  // the evaluation in progress; null when idle
  QProgressBar* progress_;
  QLabel* progress_label_;
  QPushButton* cancel_;
  std::shared_ptr<std::atomic<bool>> cancelled_;  // the running evaluation's flag
  QElapsedTimer clock_;
  int units_ = 0, units_done_ = 0;
  bool dark_ = false;
};

}  // namespace msconv::ui
