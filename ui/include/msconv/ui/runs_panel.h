// The Runs panel: the workspace's runs from the run store and the workbench's queue (status,
// operator, colour, a visibility checkbox for the charts, a failed run's error) with live columns
// while a run trains (step, a progress bar with step / total, ETA, samples/s, elapsed time) and
// the validation behind the run's best checkpoint (accuracy and TAR@FAR, named as the Compare
// panel names them). Sorting by a column keeps the selection; numeric columns sort as numbers,
// ties by name, so a refresh never shuffles rows. An empty workspace shows what to do instead.
//
// The New Run form over the training configuration, validated key by key as `msconv train --set`
// validates (an invalid value is shown under the form, naming the key, and blocks Launch): model,
// data.train / data.val with file and folder pickers and a one-line summary of the picked set (as
// `msconv data info` gives), epochs or steps, loss and margins, LR schedule, seed, device and
// threads, and "Copy settings from run", which fills the form from a run's stored configuration.
#pragma once

#include <QColor>
#include <QString>
#include <QStringList>
#include <QTimer>
#include <QWidget>

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "msconv/ui/run_state.h"

class QComboBox;
class QLineEdit;
class QSpinBox;
class QPushButton;
class QLabel;
class QTableWidget;
class QThread;
class QToolButton;

namespace msconv::ui {

// A run the store does not hold yet: queued, or failed before it could start.
struct PendingRun {
  QString name;
  RunState state = RunState::kQueued;
  QString arch, op, error;
};

// A data set's one-line summary, as `msconv data info` gives it (kind, identities, images, pairs,
// image size), from the same core readers. Throws msconv::Error naming the path. Reads the set:
// call it off the GUI thread for a large one.
QString dataSummary(const QString& path);

class RunsPanel : public QWidget {
  Q_OBJECT
 public:
  enum Column {
    kName,
    kStatus,
    kArch,
    kOp,
    kSteps,     // the last step (live while the run trains)
    kProgress,  // "step / total" over a progress bar
    kEta,
    kSpeed,     // samples/s, the last logged
    kAccuracy,  // the accuracy of the validation behind best.ckpt (else the last one)
    kTar,       // that validation's TAR@FAR (at 1e-3 where it has it)
    kElapsed,
    kError,
    kOrder,  // hidden: the natural order (queued runs first, then the store's)
    kColumns
  };
  explicit RunsPanel(QString workspace, QWidget* parent = nullptr);
  ~RunsPanel() override;
  const QString& workspace() const { return workspace_; }
  // The form as key=value settings; empty and `error` set when a value is invalid (a batch that
  // the processes cannot share evenly too).
  QStringList settings(QString* error) const;
  // The form's processes: local ranks that train the run as one (1 to the number of cores).
  int processes() const;
  QString runName() const;
  bool launchEnabled() const;
  void refresh();  // re-reads the store (the table is empty until the first refresh)
  // The queue's runs, listed above the store's.
  void setPending(std::vector<PendingRun> pending);
  // Live events of a run this window trains (TrainingWorker's started / step): the row's step,
  // progress, ETA and samples/s change at once, without re-reading the store.
  void runStarted(const QString& run, qint64 total_steps);
  // A launched run preparing its data before its first step (the synthetic set generated): its
  // row's status reads "preparing N %", the error column says what.
  void runPreparing(const QString& run, const QString& what, qint64 done, qint64 total);
  void runStep(const QString& run, qint64 step, qint64 total_steps, double samples_per_s,
               double eta_s);
  // The colour each run is drawn in (the Training panel's).
  void setColours(std::function<QColor(const QString&)> colour_of) { colour_of_ = colour_of; }
  int rowCount() const;
  QString cell(int row, int column) const;
  int rowOf(const QString& run) const;  // -1 when absent
  QStringList runOrder() const;         // the names as the table shows them, top to bottom
  QString selectedRun() const;          // "" when none
  void selectRun(const QString& run);
  // Sorts as a click on the column's header does (kOrder: the natural order).
  void sortBy(int column, Qt::SortOrder order);
  // The visibility checkbox of a row (the run's curves on the charts): emits visibilityChanged.
  void setRunVisible(int row, bool visible);
  RunState stateOf(int row) const;
  // The run folder of a table row (WORKSPACE/runs/NAME); what its context menu opens.
  QString runDir(int row) const;
  // The context menu's "Open in msconv-scope" for a row: emits scopeRequested.
  void openScope(int row);
  // Fills the form from a run's stored configuration (the store's, else runs/NAME/config.json):
  // the form's fields, and every other key that differs from the defaults in the settings line.
  // False with the error under the form when the run or its configuration cannot be read.
  bool copySettingsFrom(const QString& run);
  // Picks data.train / data.val through the file dialogs (msconv::ui::openFileName and
  // existingDirectory); the summary of the picked set follows (trainSummary / valSummary).
  void pickTrainFile();
  void pickTrainFolder();
  void pickValFile();  // adds a .bin to data.val's list
  bool summaryPending() const { return summaries_running_ > 0; }

  // Widgets, for tests and keyboard users.
  QComboBox* archBox() const { return arch_; }
  QComboBox* opBox() const { return op_; }
  QLineEdit* lrEdit() const { return lr_; }
  QSpinBox* batchBox() const { return batch_; }
  QSpinBox* stepsBox() const { return steps_; }
  QSpinBox* epochsBox() const { return epochs_; }
  QSpinBox* processesBox() const { return processes_; }
  QLineEdit* trainEdit() const { return train_; }
  QLineEdit* valEdit() const { return val_; }
  QLabel* trainSummary() const { return train_summary_; }
  QLabel* valSummary() const { return val_summary_; }
  QComboBox* lossBox() const { return loss_; }
  QLineEdit* scaleEdit() const { return loss_s_; }
  QLineEdit* marginEdit(int i) const { return margins_[i - 1]; }  // loss.m1, m2, m3
  QComboBox* scheduleBox() const { return schedule_; }
  QLineEdit* lrMinEdit() const { return lr_min_; }
  QLineEdit* warmupEdit() const { return warmup_; }
  QLineEdit* seedEdit() const { return seed_; }
  QComboBox* deviceBox() const { return device_; }
  QSpinBox* threadsBox() const { return threads_; }
  QLineEdit* settingsEdit() const { return extra_; }
  QLineEdit* nameEdit() const { return name_; }
  QPushButton* launchButton() const { return launch_; }
  QToolButton* copyButton() const { return copy_; }
  QLabel* errorLabel() const { return error_; }
  QTableWidget* table() const { return table_; }
  QWidget* emptyHint() const { return hint_; }

 Q_SIGNALS:
  void launchRequested(const QString& name, const QStringList& settings, int processes);
  void scopeRequested(const QString& run_dir);
  void visibilityChanged(const QString& run, bool visible);
  // From a row's context menu (the actions actionsFor the row's state offers).
  void runAction(const QString& run, msconv::ui::RunAction action);
  // The empty workspace's hint: its Open workspace and demo buttons (the window acts).
  void openWorkspaceRequested();
  void openDemoRequested();
  void summaryReady();  // a picked set's summary is shown

 private:
  struct Row;
  struct Live {
    qint64 step = -1, total = 0;
    QString preparing;  // "generating the synthetic set: 1200 of 8000 images"
    int preparing_percent = -1;
    double preparing_since = -1;  // seconds (epoch) at the first preparing event
    qint64 preparing_first = 0;   // images done then
    double preparing_eta = -1;
    double samples_per_s = -1, eta_s = -1;
  };
  void validate();
  void applyRows(const std::vector<Row>& rows);
  void fillRow(int row, const Row& r);
  void updateLiveCells(int row, const QString& run);
  void tick();  // elapsed times and ETAs of running rows; the store's runs trained elsewhere
  void summarise(const QString& path, QLabel* label);
  void fitNameColumn();
  QString workspace_;
  QComboBox *arch_, *op_, *loss_, *schedule_, *device_;
  QLineEdit *lr_, *name_, *extra_, *train_, *val_, *loss_s_, *lr_min_, *warmup_, *seed_;
  QLineEdit* margins_[3];
  QSpinBox *batch_, *steps_, *epochs_, *processes_, *threads_;
  QPushButton* launch_;
  QToolButton* copy_;
  QLabel *error_, *train_summary_, *val_summary_;
  QTableWidget* table_;
  QWidget* hint_;
  std::vector<PendingRun> pending_;
  std::map<QString, Live> live_;
  std::map<QString, double> started_at_;  // run -> unix seconds (the store's created)
  QTimer timer_;                          // 1 s while a row is running
  int summaries_running_ = 0, ticks_ = 0;
  std::vector<QThread*> summary_threads_;
  std::function<QColor(const QString&)> colour_of_;
};

}  // namespace msconv::ui
