// The Runs panel: the workspace's runs from the run store (status, operator, colour), and a New
// Run form over the training configuration with inline validation (the same validation as
// `msconv train --set`): an invalid value is shown under the form and blocks Launch.
#pragma once

#include <QString>
#include <QStringList>
#include <QWidget>

class QComboBox;
class QLineEdit;
class QSpinBox;
class QPushButton;
class QLabel;
class QTableWidget;

namespace msconv::ui {

class RunsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit RunsPanel(QString workspace, QWidget* parent = nullptr);
  // The form as key=value settings; empty and `error` set when a value is invalid.
  QStringList settings(QString* error) const;
  QString runName() const;
  bool launchEnabled() const;
  void refresh();  // re-reads the store
  int rowCount() const;
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
  QLineEdit* nameEdit() const { return name_; }
  QPushButton* launchButton() const { return launch_; }
  QLabel* errorLabel() const { return error_; }

 Q_SIGNALS:
  void launchRequested(const QString& name, const QStringList& settings);
  void scopeRequested(const QString& run_dir);

 private:
  void validate();
  QString workspace_;
  QComboBox *arch_, *op_;
  QLineEdit *lr_, *name_, *extra_;
  QSpinBox *batch_, *steps_;
  QPushButton* launch_;
  QLabel* error_;
  QTableWidget* table_;
};

}  // namespace msconv::ui
