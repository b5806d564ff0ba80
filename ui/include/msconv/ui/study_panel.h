// The Study panel: seeds, grids and statistics in the workbench (what `msconv study` does on the
// command line, on the same files and runs).
//
// - A study: one the workspace keeps (WS/studies/NAME.json), a new one from a preset (written
//   there), or any study file (Open...), shown as its JSON in an editor. "key = v1, v2, v3" sets
//   an axis and the seeds line the seeds; every edit is validated (study::parseStudy, then
//   study::expand: each cell's configuration as `msconv train --set` checks it). The error is shown
//   under the editor and Launch is disabled while the study is invalid.
// - Launch writes WS/studies/NAME.json, then hands every cell x seed run that has not started
//   (pending) to the workbench's run queue (launchRequested), each as the run `study run` trains:
//   study::runName, study::runSettings. Done runs are not trained again, failed ones not retried;
//   stopped and interrupted runs are left as they are (the queue starts runs from scratch and
//   cannot resume one: `msconv study run NAME` resumes them).
// - The grid: cells x seeds, each run's status (queued, running with its step, done, failed with
//   its error as tooltip, stopped, interrupted), refreshed every second while the panel is shown
//   and whenever the window reports a run event.
// - The report (eval::studyReport through the engine bridge, on a worker thread): per cell the
//   mean +- std of every metric (the best per column bold, a mark where the difference from the
//   reference is significant after Holm's correction); for the chosen metric n, mean +- std, the
//   95 % interval, the difference from the reference and its p values; a chart of the metric
//   against MACs, parameters or training samples/s with 95 % interval bars, one labelled point
//   per cell; the conclusions. Exports: CSV, Markdown, LaTeX, JSON, and the chart as PNG or PDF.
#pragma once

#include <QElapsedTimer>
#include <QJsonDocument>
#include <QString>
#include <QStringList>
#include <QTimer>
#include <QWidget>

#include <atomic>
#include <memory>
#include <set>
#include <vector>

#include "msconv/ui/run_queue.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;
class QThread;

namespace msconv::ui {

class StudyPanel : public QWidget {
  Q_OBJECT
 public:
  explicit StudyPanel(QString workspace, QWidget* parent = nullptr);
  ~StudyPanel() override;

  // ---- The study
  // The workspace's studies in the study box (kept selection where it still exists).
  void refreshStudies();
  // Shows a study (a name the workspace keeps, or a file) in the editor; false with the error
  // under the editor when it cannot be read.
  bool openStudy(const QString& name_or_file);
  // A preset (study::presetNames) at a scale (tiny, small), written to WS/studies/NAME.json and
  // opened. NAME is the preset's (NAME-small at the small scale); a different study of that name
  // is not overwritten: the new one takes the first free NAME-2, NAME-3...
  QString newFromPreset(const QString& preset, const QString& scale);
  void setStudyText(const QString& json);  // the editor's text, validated
  QString studyText() const;
  // "key = v1, v2, v3": sets (adds or replaces) an axis of the study in the editor; "key =" removes
  // it. False with the error under the editor when the line or the study does not parse.
  bool setAxis(const QString& line);
  // "0, 1, 2": the study's seeds. False with the error when they do not parse.
  bool setSeeds(const QString& line);
  // The valid study's name ("" while the editor's study is invalid) and the validation's error.
  QString studyName() const;
  QString error() const;
  bool launchEnabled() const;
  int cellCount() const;
  int seedCount() const;

  // ---- Launch
  // Writes the study to WS/studies/NAME.json and asks the queue for every pending cell x seed
  // run not queued or training already (launchRequested). Returns those runs (none while the
  // study is invalid); the message line says what was left out and why.
  std::vector<QueuedRun> launch();
  // The runs the window has queued, or is training: not queued twice, shown as queued/starting.
  void setBusyRuns(const QStringList& queued, const QStringList& training);

  // ---- The grid (cells x seeds)
  void refreshGrid();  // from the run store, now
  // The store changed (a run started or ended): the grid and the study list are read again now
  // when the panel is on screen, else when it is next shown.
  void invalidate();
  QTableWidget* grid() const { return grid_; }
  QString gridText(int cell, int seed) const;
  QString gridToolTip(int cell, int seed) const;

  // ---- The report
  // Evaluates the study's finished runs on a worker thread: reportReady or reportFailed.
  void computeReport();
  bool computing() const { return worker_ != nullptr; }
  // Stops the report: before the next run is evaluated (studyReport's progress line comes before
  // each run; the run in progress finishes, eval::evaluateCheckpoint having no hook inside it).
  // reportFailed("report cancelled ...") follows once the worker has stopped.
  void cancelReport();
  QProgressBar* reportProgressBar() const { return report_progress_; }
  QPushButton* reportCancelButton() const { return report_cancel_; }
  // Shows a report document (eval::studyReport's JSON): tables, chart, conclusions. False with
  // the error in the message line when it is not one.
  bool setReport(const QString& json);
  QString reportJson() const { return report_json_; }
  // The metrics the report has (metric box) and the costs the chart's x may show (cost box).
  QStringList metrics() const;
  void setMetric(const QString& metric);
  QString metric() const;
  void setCost(const QString& cost);  // params_m, gmacs or train_samples_per_s
  QString cost() const;
  // Writes the report (.csv, .md, .tex, .json, .txt through formatStudyReport) or the chart
  // (.png, .pdf), chosen by the file's extension. False with the error in the message line.
  bool exportTo(const QString& path);

  // Widgets, for tests and keyboard users.
  QComboBox* studyBox() const { return study_box_; }
  QComboBox* presetBox() const { return preset_box_; }
  QComboBox* scaleBox() const { return scale_box_; }
  QPlainTextEdit* editor() const { return editor_; }
  QLineEdit* axisEdit() const { return axis_edit_; }
  QLineEdit* seedsEdit() const { return seeds_edit_; }
  QLabel* errorLabel() const { return error_; }
  QLabel* messageLabel() const { return message_; }
  QPushButton* launchButton() const { return launch_; }
  QTableWidget* summaryTable() const { return summary_; }  // cells x every metric
  QTableWidget* detailTable() const { return detail_; }    // the chosen metric, with the tests
  QCustomPlot* chart() const { return chart_; }
  QLabel* conclusionsLabel() const { return conclusions_; }
  void setDark(bool on);

 Q_SIGNALS:
  // Runs for the workbench's queue (the window enqueues them and starts the queue).
  void launchRequested(const std::vector<msconv::ui::QueuedRun>& runs);
  void reportReady();
  void reportFailed(const QString& message);
  void reportProgress(const QString& line);  // from the worker thread (queued connection)

 protected:
  void showEvent(QShowEvent* e) override;
  void hideEvent(QHideEvent* e) override;

 private:
  struct Current;  // the editor's study once valid: study::Study and its cells
  void validate();
  void syncLines();  // the seeds line from the valid study
  void fillReport();
  void drawChart();
  QString studiesDir() const;

  QString workspace_;
  QComboBox *study_box_, *preset_box_, *scale_box_, *metric_box_, *cost_box_;
  QPlainTextEdit* editor_;
  QLineEdit *axis_edit_, *seeds_edit_;
  QLabel *error_, *message_, *conclusions_, *report_status_;
  QPushButton *launch_, *report_button_;
  QTableWidget *grid_, *summary_, *detail_;
  QCustomPlot* chart_;
  QTimer timer_;  // the grid's refresh while shown
  QThread* worker_ = nullptr;
  QProgressBar* report_progress_;
  QPushButton* report_cancel_;
  std::shared_ptr<std::atomic<bool>> report_cancelled_;
  QElapsedTimer report_clock_;
  int report_runs_ = 0, report_done_ = 0;
  std::unique_ptr<Current> current_;  // null while the editor's study is invalid
  QString source_;                    // what the editor's text came from (errors name it)
  std::set<QString> queued_, training_;
  QString report_json_;
  QJsonDocument report_;
  bool grid_stale_ = true, dark_ = false;
};

}  // namespace msconv::ui
