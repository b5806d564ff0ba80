// msconv-lab's main window: the Runs panel (store + New Run form) and the Training panel (live
// curves), a toolbar to pause, resume and stop the running runs, and a status bar with the device
// and thread count. Several runs may train at once, each on its own thread.
#pragma once

#include <QMainWindow>
#include <QString>

#include <memory>
#include <vector>

class QLabel;

namespace msconv::ui {

class RunsPanel;
class TrainingPanel;
class EvalPanel;
class InspectPanel;
class ComparePanel;
class TrainingWorker;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QString workspace, QWidget* parent = nullptr);
  ~MainWindow() override;
  RunsPanel* runs() const { return runs_; }
  TrainingPanel* training() const { return training_; }
  EvalPanel* evaluation() const { return eval_; }
  InspectPanel* inspect() const { return inspect_; }
  ComparePanel* compare() const { return compare_; }
  const std::vector<std::unique_ptr<TrainingWorker>>& workers() const { return workers_; }
  // Starts a run as the form's Launch does; returns the worker (null on a configuration error,
  // which is shown in a dialog unless `quiet`).
  TrainingWorker* launch(const QString& name, const QStringList& settings, bool quiet = false);
  // msconv-scope beside this executable, and its arguments for a run folder.
  static QString scopeProgram();
  static QStringList scopeArguments(const QString& run_dir) { return {run_dir}; }

 private:
  QString workspace_;
  RunsPanel* runs_;
  TrainingPanel* training_;
  EvalPanel* eval_;
  InspectPanel* inspect_;
  ComparePanel* compare_;
  QLabel* status_;
  std::vector<std::unique_ptr<TrainingWorker>> workers_;
};

}  // namespace msconv::ui
