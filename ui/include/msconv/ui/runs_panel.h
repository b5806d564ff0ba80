// The Runs panel: the workspace's runs from the run store and the workbench's queue (status,
// operator, colour, a visibility checkbox for the charts, a failed run's error), and a New Run form
// over the training configuration with inline validation (the same validation as
// `msconv train --set`): an invalid value is shown under the form and blocks Launch.
#pragma once

#include <QColor>
#include <QString>
#include <QStringList>
#include <QWidget>

#include <functional>
#include <vector>

#include "msconv/ui/run_state.h"

class QComboBox;
class QLineEdit;
class QSpinBox;
class QPushButton;
class QLabel;
class QTableWidget;

namespace msconv::ui {

// A run the store does not hold yet: queued, or failed before it could start.
struct PendingRun {
  QString name;
  RunState state = RunState::kQueued;
  QString arch, op, error;
};

class RunsPanel : public QWidget {
  Q_OBJECT
 public:
  enum Column { kName, kStatus, kArch, kOp, kSteps, kError, kColumns };
  explicit RunsPanel(QString workspace, QWidget* parent = nullptr);
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
  // The colour each run is drawn in (the Training panel's).
  void setColours(std::function<QColor(const QString&)> colour_of) { colour_of_ = colour_of; }
  int rowCount() const;
  QString cell(int row, int column) const;
  int rowOf(const QString& run) const;  // -1 when absent
  // The visibility checkbox of a row (the run's curves on the charts): emits visibilityChanged.
  void setRunVisible(int row, bool visible);
  RunState stateOf(int row) const;
  // The run folder of a table row (WORKSPACE/runs/NAME); what its context menu opens.
  QString runDir(int row) const;
  // The context menu's "Open in msconv-scope" for a row: emits scopeRequested.
  void openScope(int row);

  // Widgets, for tests and keyboard users.
  QComboBox* archBox() const { return arch_; }
  QComboBox* opBox() const { return op_; }
  QLineEdit* lrEdit() const { return lr_; }
  QSpinBox* batchBox() const { return batch_; }
  QSpinBox* stepsBox() const { return steps_; }
  QSpinBox* processesBox() const { return processes_; }
  QLineEdit* settingsEdit() const { return extra_; }
  QLineEdit* nameEdit() const { return name_; }
  QPushButton* launchButton() const { return launch_; }
  QLabel* errorLabel() const { return error_; }

 Q_SIGNALS:
  void launchRequested(const QString& name, const QStringList& settings, int processes);
  void scopeRequested(const QString& run_dir);
  void visibilityChanged(const QString& run, bool visible);
  // From a row's context menu (the actions actionsFor the row's state offers).
  void runAction(const QString& run, msconv::ui::RunAction action);

 private:
  void validate();
  QString workspace_;
  QComboBox *arch_, *op_;
  QLineEdit *lr_, *name_, *extra_;
  QSpinBox *batch_, *steps_, *processes_;
  QPushButton* launch_;
  QLabel* error_;
  QTableWidget* table_;
  std::vector<PendingRun> pending_;
  std::vector<RunState> states_;  // per table row
  std::function<QColor(const QString&)> colour_of_;
};

}  // namespace msconv::ui
