#include "msconv/ui/main_window.h"

#include <QAction>
#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QLabel>
#include <QMessageBox>
#include <QProcess>
#include <QStatusBar>
#include <QTabWidget>
#include <QToolBar>

#include "msconv/error.h"
#include "msconv/runtime.h"
#include "msconv/ui/engine.h"
#include "msconv/ui/panels.h"
#include "msconv/ui/runs_panel.h"
#include "msconv/ui/training_panel.h"
#include "msconv/ui/training_worker.h"

namespace msconv::ui {

MainWindow::MainWindow(QString workspace, QWidget* parent)
    : QMainWindow(parent), workspace_(std::move(workspace)) {
  setWindowTitle("MSConv Lab — " + workspace_);
  auto* tabs = new QTabWidget;
  runs_ = new RunsPanel(workspace_);
  training_ = new TrainingPanel;
  eval_ = new EvalPanel(workspace_);
  inspect_ = new InspectPanel(workspace_);
  compare_ = new ComparePanel(workspace_);
  tabs->addTab(runs_, "Runs");
  tabs->addTab(training_, "Training");
  tabs->addTab(eval_, "Evaluation");
  tabs->addTab(inspect_, "Inspect");
  tabs->addTab(compare_, "Compare");
  setCentralWidget(tabs);
  auto* bar = addToolBar("runs");
  auto* pause = bar->addAction("Pause");
  pause->setCheckable(true);
  pause->setShortcut(QKeySequence("Ctrl+P"));
  auto* stop = bar->addAction("Stop");
  stop->setShortcut(QKeySequence("Ctrl+."));
  connect(pause, &QAction::toggled, this, [this, pause](bool on) {
    pause->setText(on ? "Resume" : "Pause");
    for (auto& w : workers_) w->pause(on);
  });
  connect(stop, &QAction::triggered, this, [this] {
    for (auto& w : workers_) w->stop();
  });
  // Runs that trained before this window opened: their logged curves.
  try {
    for (const auto& h : runHistories(workspace_)) {
      for (size_t i = 0; i < h.steps.size(); ++i)
        training_->addStep(h.name, h.steps[i], h.loss[i], h.lr[i], h.samples_per_s[i]);
      for (const auto& [step, m] : h.validations) {
        QMap<QString, double> qm;
        for (const auto& [k, v] : m) qm.insert(k, v);
        training_->addValidation(h.name, step, qm);
      }
    }
  } catch (const Error& e) {
    statusBar()->showMessage(QString::fromStdString(e.what()));
  }
  status_ = new QLabel(QString::fromStdString(deviceSummary()));
  statusBar()->addPermanentWidget(status_);
  connect(runs_, &RunsPanel::scopeRequested, this, [this](const QString& dir) {
    const QString program = scopeProgram();
    if (!QFileInfo::exists(program) || !QProcess::startDetached(program, scopeArguments(dir)))
      QMessageBox::warning(this, "msconv-scope", "cannot start " + program);
  });
  connect(runs_, &RunsPanel::launchRequested, this,
          [this, tabs](const QString& name, const QStringList& s) {
            if (launch(name, s)) tabs->setCurrentWidget(training_);
          });
}

QString MainWindow::scopeProgram() {
  return QDir(QCoreApplication::applicationDirPath()).filePath("msconv-scope");
}

MainWindow::~MainWindow() {
  for (auto& w : workers_) w->stop();
}

TrainingWorker* MainWindow::launch(const QString& name, const QStringList& settings, bool quiet) {
  auto worker = std::make_unique<TrainingWorker>(workspace_, name, settings);
  TrainingWorker* w = worker.get();
  // The run's display name is the store's (it may get a -2 suffix); until it starts, the form's.
  auto run_name = std::make_shared<QString>(name);
  connect(w, &TrainingWorker::started, this, [this, run_name](const QString& run, qint64) {
    *run_name = run;
    runs_->refresh();
  });
  connect(w, &TrainingWorker::step, training_,
          [this, run_name](qint64 step, double loss, double lr, double sps, double, double) {
            training_->addStep(*run_name, step, loss, lr, sps);
          });
  connect(w, &TrainingWorker::validation, training_,
          [this, run_name](qint64 step, const QMap<QString, double>& m) {
            training_->addValidation(*run_name, step, m);
          });
  connect(w, &TrainingWorker::finished, this, [this](const QString& status, const QString& ckpt) {
    runs_->refresh();
    eval_->refresh();
    inspect_->refresh();
    compare_->refresh();
    statusBar()->showMessage("run " + status + ": " + ckpt, 8000);
  });
  connect(w, &TrainingWorker::failed, this, [this, quiet](const QString& message) {
    runs_->refresh();
    if (!quiet) QMessageBox::warning(this, "Run failed", message);
    statusBar()->showMessage("run failed: " + message, 8000);
  });
  try {
    w->start();
  } catch (const Error& e) {
    if (!quiet) QMessageBox::warning(this, "Cannot launch", QString::fromStdString(e.what()));
    return nullptr;
  }
  workers_.push_back(std::move(worker));
  return w;
}

}  // namespace msconv::ui
