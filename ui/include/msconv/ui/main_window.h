// msconv-lab's main window: the Runs, Training, Evaluation, Inspect, Compare and Study panels; the
// run queue (RunQueue); a toolbar to train the queue, pause, resume and stop; settings remembered
// between sessions (QSettings: window, tab, theme, chart options); light and dark themes; keyboard
// shortcuts; a status bar with the device, thread count and queue. File > Open workspace and
// File > Recent workspaces (QSettings, most recent first) switch the window to another workspace;
// the empty workspace's hint can open the demo workspace.
#pragma once

#include <QMainWindow>
#include <QString>
#include <QStringList>

#include <memory>
#include <set>
#include <vector>

#include "msconv/ui/run_queue.h"
#include "msconv/ui/runs_panel.h"

class QLabel;
class QTabWidget;
class QAction;
class QSpinBox;
class QMenu;

namespace msconv::ui {

class TrainingPanel;
class EvalPanel;
class InspectPanel;
class ComparePanel;
class StudyPanel;
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
  StudyPanel* study() const { return study_; }
  QTabWidget* tabs() const { return tabs_; }
  const QString& workspace() const { return workspace_; }
  // Switches the window to another workspace folder: every panel and the queue are rebuilt on it,
  // and it heads the recent workspaces. Refused (false, with the reason in a warning box and the
  // status bar) while runs train, or for a path that is not a folder.
  bool setWorkspace(const QString& path);
  // File > Open workspace: a folder through msconv::ui::existingDirectory.
  void openWorkspace();
  // The demo workspace: `./lab demo`'s (out/demo/lab under the current folder) when it exists,
  // else one in the user's data folder, prepared with three tiny runs queued (one per operator,
  // the embedded synthetic faces) when it holds no run yet. Opens it (setWorkspace).
  bool openDemoWorkspace();
  static QString demoWorkspace();
  // File > Recent workspaces: absolute paths, most recent first, at most kMaxRecent; folders that
  // no longer exist are dropped (from the settings too).
  static constexpr int kMaxRecent = 8;
  static QStringList recentWorkspaces();
  static void addRecentWorkspace(const QString& path);
  QMenu* recentMenu() const { return recent_menu_; }
  const std::vector<std::unique_ptr<TrainingWorker>>& workers() const { return workers_; }

  // Starts a run now, trained by `processes` local ranks (TrainingWorker); returns the worker
  // (null on a configuration error, which is shown in a warning box and listed as a failed run).
  TrainingWorker* launch(const QString& name, const QStringList& settings, bool resume = false,
                         int processes = 1);
  // Adds a run to the queue (what the form's Launch does, followed by startQueue()).
  void enqueue(const QString& name, const QStringList& settings, int processes = 1);
  // Train queued: from now on queued runs start whenever a slot is free.
  void startQueue();
  // Stop (Ctrl+.): the running runs stop, each keeping a checkpoint, and the queue waits for the
  // next Train queued instead of filling the freed slots.
  void stopAll();
  const std::vector<QueuedRun>& queue() const;
  int runningCount() const;
  int maxParallel() const;
  void setMaxParallel(int n);
  bool dark() const { return dark_; }
  void setDark(bool on);

  // msconv-scope beside this executable, and its arguments for a run folder.
  static QString scopeProgram();
  static QStringList scopeArguments(const QString& run_dir) { return {run_dir}; }

 Q_SIGNALS:
  void workspaceChanged(const QString& workspace);

 protected:
  void closeEvent(QCloseEvent* e) override;

 private:
  void updatePending();
  void updateStatus();
  void loadSettings();
  void saveSettings() const;
  void refreshAll();
  void buildWorkspace();  // the panels and the queue on workspace_
  void fillRecentMenu();

  QString workspace_;
  QTabWidget* tabs_;
  RunsPanel* runs_;
  TrainingPanel* training_;
  EvalPanel* eval_;
  InspectPanel* inspect_;
  ComparePanel* compare_;
  StudyPanel* study_;
  QLabel* status_;
  QAction* theme_action_ = nullptr;
  QSpinBox* parallel_ = nullptr;
  QMenu* recent_menu_ = nullptr;
  std::vector<std::unique_ptr<TrainingWorker>> workers_;
  RunQueue* queue_ = nullptr;
  std::vector<PendingRun> failed_;  // runs that failed before the store knew them
  bool dark_ = false;
};

}  // namespace msconv::ui
