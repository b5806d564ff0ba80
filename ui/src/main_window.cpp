#include "msconv/ui/main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QPalette>
#include <QProcess>
#include <QSaveFile>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>
#include <QStatusBar>
#include <QStyleFactory>
#include <QTabWidget>
#include <QToolBar>

#include <algorithm>
#include <initializer_list>

#include "msconv/error.h"
#include "msconv/runtime.h"
#include "msconv/ui/compare_panel.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/engine.h"
#include "msconv/ui/eval_panel.h"
#include "msconv/ui/inspect_panel.h"
#include "msconv/ui/runs_panel.h"
#include "msconv/ui/study_panel.h"
#include "msconv/ui/training_panel.h"
#include "msconv/ui/training_worker.h"

namespace msconv::ui {

// ---- The window
// ----------------------------------------------------------------------------------

namespace {

QPalette darkPalette() {
  QPalette p;
  const QColor window(45, 45, 48), base(30, 30, 30), text(220, 220, 220);
  p.setColor(QPalette::Window, window);
  p.setColor(QPalette::WindowText, text);
  p.setColor(QPalette::Base, base);
  p.setColor(QPalette::AlternateBase, window);
  p.setColor(QPalette::ToolTipBase, window);
  p.setColor(QPalette::ToolTipText, text);
  p.setColor(QPalette::Text, text);
  p.setColor(QPalette::Button, window);
  p.setColor(QPalette::ButtonText, text);
  p.setColor(QPalette::BrightText, Qt::red);
  p.setColor(QPalette::Highlight, QColor(42, 130, 218));
  p.setColor(QPalette::HighlightedText, Qt::black);
  p.setColor(QPalette::Link, QColor(42, 130, 218));
  p.setColor(QPalette::Disabled, QPalette::Text, QColor(120, 120, 120));
  p.setColor(QPalette::Disabled, QPalette::ButtonText, QColor(120, 120, 120));
  return p;
}

const char* kShortcuts =
    "Ctrl+1 ... Ctrl+6\tRuns, Training, Evaluation, Inspect, Compare, Study\n"
    "Ctrl+Return\tLaunch the New Run form's run\n"
    "Ctrl+R\tTrain the queued runs\n"
    "Ctrl+P\tPause / resume the running runs\n"
    "Ctrl+.\tStop the running runs (each keeps a checkpoint); the queue waits\n"
    "Ctrl+E\tExport the training charts (PNG, PDF, CSV)\n"
    "Ctrl+L\tLogarithmic value axes\n"
    "Ctrl+Shift+T\tDark / light theme\n"
    "F5\tRe-read the workspace\n"
    "Ctrl+Shift+O\tOpen another workspace\n"
    "Ctrl+O\tOpen a face image to inspect\n"
    "Ctrl+Q\tQuit";

// A run the store does not hold, as the Runs panel lists it (architecture and operator from its
// settings).
PendingRun pendingRun(const QueuedRun& run, RunState state, const QString& error) {
  PendingRun p{run.name, state, {}, {}, error};
  for (const auto& kv : run.settings) {
    if (kv.startsWith("model.arch=")) p.arch = kv.mid(11);
    if (kv.startsWith("model.op=")) p.op = kv.mid(9);
  }
  return p;
}

}  // namespace

MainWindow::MainWindow(QString workspace, QWidget* parent)
    : QMainWindow(parent), workspace_(std::move(workspace)) {
  tabs_ = new QTabWidget;
  setCentralWidget(tabs_);

  // Toolbar and menus.
  auto* bar = addToolBar("runs");
  bar->setObjectName("runs-toolbar");
  auto* train = bar->addAction("Train queued");
  train->setShortcut(QKeySequence("Ctrl+R"));
  train->setToolTip("start the queued runs, one slot at a time (Ctrl+R)");
  auto* pause = bar->addAction("Pause");
  pause->setCheckable(true);
  pause->setShortcut(QKeySequence("Ctrl+P"));
  auto* stop = bar->addAction("Stop");
  stop->setShortcut(QKeySequence("Ctrl+."));
  bar->addSeparator();
  bar->addWidget(new QLabel(" parallel runs "));
  parallel_ = new QSpinBox;
  parallel_->setRange(1, 16);
  parallel_->setToolTip("how many runs train at once; the rest wait in the queue");
  bar->addWidget(parallel_);
  connect(train, &QAction::triggered, this, &MainWindow::startQueue);
  connect(pause, &QAction::toggled, this, [this, pause](bool on) {
    pause->setText(on ? "Resume" : "Pause");
    for (auto& w : workers_) w->pause(on);
  });
  connect(stop, &QAction::triggered, this, &MainWindow::stopAll);
  connect(parallel_, &QSpinBox::valueChanged, this, &MainWindow::setMaxParallel);

  auto* file = menuBar()->addMenu("&File");
  auto* open_ws = file->addAction("Open workspace…", this, &MainWindow::openWorkspace);
  open_ws->setShortcut(QKeySequence("Ctrl+Shift+O"));
  open_ws->setToolTip("a folder of runs: the panels switch to it");
  recent_menu_ = file->addMenu("Recent workspaces");
  recent_menu_->setObjectName("recent_workspaces");
  connect(recent_menu_, &QMenu::aboutToShow, this, &MainWindow::fillRecentMenu);
  file->addAction("Open the demo workspace", this, [this] { openDemoWorkspace(); });
  file->addSeparator();
  auto* refresh = file->addAction("Re-read the workspace", this, &MainWindow::refreshAll);
  refresh->setShortcut(QKeySequence(Qt::Key_F5));
  auto* open_image = file->addAction("Open a face image...", this, [this] {
    tabs_->setCurrentWidget(inspect_);
    inspect_->browse();
  });
  open_image->setShortcut(QKeySequence("Ctrl+O"));
  file->addSeparator();
  auto* quit = file->addAction("Quit", this, &QWidget::close);
  quit->setShortcut(QKeySequence("Ctrl+Q"));
  auto* view = menuBar()->addMenu("&View");
  const char* tab_names[] = {"Runs", "Training", "Evaluation", "Inspect", "Compare", "Study"};
  for (int i = 0; i < 6; ++i) {
    auto* a = view->addAction(tab_names[i], this, [this, i] { tabs_->setCurrentIndex(i); });
    a->setShortcut(QKeySequence(QString("Ctrl+%1").arg(i + 1)));
  }
  view->addSeparator();
  auto* log_y = view->addAction("Logarithmic value axes", this,
                                [this] { training_->setLogY(!training_->logY()); });
  log_y->setShortcut(QKeySequence("Ctrl+L"));
  theme_action_ = view->addAction("Dark theme", this, [this] { setDark(!dark_); });
  theme_action_->setCheckable(true);
  theme_action_->setShortcut(QKeySequence("Ctrl+Shift+T"));
  auto* help = menuBar()->addMenu("&Help");
  help->addAction("Keyboard shortcuts", this,
                  [this] { QMessageBox::information(this, "Keyboard shortcuts", kShortcuts); });
  status_ = new QLabel;
  statusBar()->addPermanentWidget(status_);

  buildWorkspace();
  loadSettings();
  updatePending();
  addRecentWorkspace(workspace_);
}

// The panels and the queue on workspace_, and their connections to the window.
void MainWindow::buildWorkspace() {
  setWindowTitle("MSConv Lab — " + workspace_);
  queue_ = new RunQueue(
      workspace_, [this] { return runningCount(); }, this);
  runs_ = new RunsPanel(workspace_);
  training_ = new TrainingPanel;
  eval_ = new EvalPanel(workspace_);
  inspect_ = new InspectPanel(workspace_);
  compare_ = new ComparePanel(workspace_);
  study_ = new StudyPanel(workspace_);
  tabs_->addTab(runs_, "Runs");
  tabs_->addTab(training_, "Training");
  tabs_->addTab(eval_, "Evaluation");
  tabs_->addTab(inspect_, "Inspect");
  tabs_->addTab(compare_, "Compare");
  tabs_->addTab(study_, "Study");
  runs_->setColours([this](const QString& run) { return training_->colourOf(run); });
  training_->setWorkspace(workspace_);

  // Runs that trained before this window opened: their logged curves.
  try {
    for (const auto& h : runHistories(workspace_)) training_->addHistory(h);
  } catch (const Error& e) {
    statusBar()->showMessage(QString::fromStdString(e.what()));
  }
  // A prepared queue (the demo's, or one left by an earlier session) waits for Train queued.
  connect(queue_, &RunQueue::launchRequested, this,
          [this](const QString& name, const QStringList& settings, bool resume, int processes) {
            launch(name, settings, resume, processes);
          });
  connect(queue_, &RunQueue::changed, this, &MainWindow::updatePending);
  connect(queue_, &RunQueue::saveFailed, this,
          [this](const QString& m) { statusBar()->showMessage(m, 8000); });
  if (const QString error = queue_->load(); !error.isEmpty()) {
    statusBar()->showMessage(error);
    showWarning(this, "Run queue", error);
  }
  connect(runs_, &RunsPanel::scopeRequested, this, [this](const QString& dir) {
    const QString program = scopeProgram();
    if (!QFileInfo::exists(program) || !QProcess::startDetached(program, scopeArguments(dir)))
      QMessageBox::warning(this, "msconv-scope", "cannot start " + program);
  });
  connect(runs_, &RunsPanel::launchRequested, this,
          [this](const QString& name, const QStringList& s, int processes) {
            enqueue(name, s, processes);
            startQueue();
            if (runningCount() > 0) tabs_->setCurrentWidget(training_);
          });
  // The empty workspace's buttons: queued, since the panel that asks is replaced.
  connect(runs_, &RunsPanel::openWorkspaceRequested, this, &MainWindow::openWorkspace,
          Qt::QueuedConnection);
  connect(
      runs_, &RunsPanel::openDemoRequested, this, [this] { openDemoWorkspace(); },
      Qt::QueuedConnection);
  // A study's pending runs join the same queue (and parallel slots) as any run.
  connect(study_, &StudyPanel::launchRequested, this, [this](const std::vector<QueuedRun>& runs) {
    for (const auto& r : runs) queue_->enqueue(r.name, r.settings, r.resume, r.processes);
    startQueue();
  });
  connect(runs_, &RunsPanel::visibilityChanged, training_, &TrainingPanel::setRunVisible);
  connect(runs_, &RunsPanel::runAction, this, [this](const QString& run, RunAction action) {
    switch (action) {
      case RunAction::kDequeue:
        queue_->remove(run);
        break;
      case RunAction::kEvaluate:
        tabs_->setCurrentWidget(eval_);
        if (eval_->selectRun(run)) eval_->evaluate();
        break;
      case RunAction::kStop:
      case RunAction::kPause:
      case RunAction::kResume:
        for (auto& w : workers_)
          if (w->runName() == run && w->running()) {
            if (action == RunAction::kStop)
              w->stop();
            else
              w->pause(action == RunAction::kPause);
          }
        break;
    }
  });
  connect(training_, &TrainingPanel::settingsChanged, this, [this] { saveSettings(); });
}

bool MainWindow::setWorkspace(const QString& path) {
  const QFileInfo info(path);
  QString refusal;
  if (path.isEmpty() || !info.isDir())
    refusal = "not a folder: " + path;
  else if (runningCount() > 0)
    refusal = QString("%1 run(s) train in %2: stop them before opening another workspace")
                  .arg(runningCount())
                  .arg(workspace_);
  if (!refusal.isEmpty()) {
    statusBar()->showMessage(refusal, 8000);
    showWarning(this, "Open workspace", refusal);
    return false;
  }
  saveSettings();
  // The old panels go once control is back in the event loop (one of them may be the sender
  // of what called this); nothing of theirs reaches the window any more.
  tabs_->clear();
  for (QObject* o : std::initializer_list<QObject*>{runs_, training_, eval_, inspect_, compare_,
                                                    study_, queue_}) {
    QObject::disconnect(o, nullptr, this, nullptr);
    if (auto* w = qobject_cast<QWidget*>(o)) w->hide();
    o->deleteLater();
  }
  workers_.clear();  // none trains: finished ones
  failed_.clear();
  workspace_ = info.absoluteFilePath();
  buildWorkspace();
  loadSettings();
  updatePending();
  addRecentWorkspace(workspace_);
  statusBar()->showMessage("workspace " + workspace_, 8000);
  Q_EMIT workspaceChanged(workspace_);
  return true;
}

void MainWindow::openWorkspace() {
  const QString dir = existingDirectory(this, "Open workspace", workspace_);
  if (!dir.isEmpty()) setWorkspace(dir);
}

QString MainWindow::demoWorkspace() {
  const QString built = QDir::current().filePath("out/demo/lab");
  if (QFileInfo::exists(built + "/runs.sqlite")) return QFileInfo(built).absoluteFilePath();
  return QDir(QStandardPaths::writableLocation(QStandardPaths::AppLocalDataLocation))
      .filePath("demo-workspace");
}

bool MainWindow::openDemoWorkspace() {
  const QString dir = demoWorkspace();
  if (!QDir().mkpath(dir)) {
    showWarning(this, "Demo workspace", "cannot create " + dir);
    return false;
  }
  if (!setWorkspace(dir)) return false;
  if (runs_->rowCount() == 0) {  // a new one: the comparison `./lab demo` starts with, queued
    for (const char* op : {"msconv-official", "skconv", "scconv"})
      queue_->enqueue(QString("demo-msnet-tiny-%1").arg(op),
                      {"model.arch=msnet-tiny", QString("model.op=%1").arg(op),
                       "train.batch_size=64", "train.max_steps=84", "train.lr=0.1",
                       "train.log_every=4", "train.val_every=42", "train.checkpoint_every=42"});
    statusBar()->showMessage("the demo workspace: three tiny runs queued; Train queued (Ctrl+R)",
                             15000);
  }
  return true;
}

QStringList MainWindow::recentWorkspaces() {
  QSettings s;
  const QStringList stored = s.value("workspaces/recent").toStringList();
  QStringList out;
  for (const auto& p : stored)
    if (QFileInfo(p).isDir() && !out.contains(p) && out.size() < kMaxRecent) out << p;
  if (out != stored) s.setValue("workspaces/recent", out);
  return out;
}

void MainWindow::addRecentWorkspace(const QString& path) {
  const QString abs = QFileInfo(path).absoluteFilePath();
  QStringList list = recentWorkspaces();
  list.removeAll(abs);
  list.prepend(abs);
  while (list.size() > kMaxRecent) list.removeLast();
  QSettings().setValue("workspaces/recent", list);
}

void MainWindow::fillRecentMenu() {
  recent_menu_->clear();
  for (const auto& p : recentWorkspaces()) {
    auto* a = recent_menu_->addAction(p, this, [this, p] { setWorkspace(p); });
    a->setEnabled(p != workspace_);
  }
  if (recent_menu_->isEmpty()) recent_menu_->addAction("(none yet)")->setEnabled(false);
}

QString MainWindow::scopeProgram() {
  return QDir(QCoreApplication::applicationDirPath()).filePath("msconv-scope");
}

MainWindow::~MainWindow() {
  stopAll();
}

void MainWindow::stopAll() {
  queue_->hold();
  for (auto& w : workers_) w->stop();
}

void MainWindow::closeEvent(QCloseEvent* e) {
  saveSettings();
  QMainWindow::closeEvent(e);
}

void MainWindow::loadSettings() {
  QSettings s;
  if (s.contains("window/geometry")) restoreGeometry(s.value("window/geometry").toByteArray());
  tabs_->setCurrentIndex(s.value("window/tab", 0).toInt());
  training_->setSmoothing(s.value("charts/smoothing", 0.6).toDouble());
  training_->setXAxis(static_cast<TrainingPanel::XAxis>(s.value("charts/x_axis", 0).toInt()));
  training_->setLogY(s.value("charts/log_y", false).toBool());
  if (s.contains("charts/far")) training_->setFar(s.value("charts/far").toString());
  training_->setBand(static_cast<TrainingPanel::Band>(s.value("charts/band", 0).toInt()));
  training_->setShowGroupedRuns(s.value("charts/grouped_runs", true).toBool());
  if (const int g = s.value("charts/group_by", 0).toInt(); g > 0 && g <= 2)
    training_->setGroupBy(static_cast<TrainingPanel::GroupBy>(g),
                          s.value("charts/group_key").toString());
  queue_->setMaxParallel(s.value("runs/max_parallel", 1).toInt());
  parallel_->setValue(queue_->maxParallel());
  setDark(s.value("window/dark", false).toBool());
}

void MainWindow::saveSettings() const {
  QSettings s;
  s.setValue("window/geometry", saveGeometry());
  s.setValue("window/tab", tabs_->currentIndex());
  s.setValue("window/dark", dark_);
  s.setValue("charts/smoothing", training_->smoothing());
  s.setValue("charts/x_axis", static_cast<int>(training_->xAxis()));
  s.setValue("charts/log_y", training_->logY());
  if (!training_->far().isEmpty()) s.setValue("charts/far", training_->far());
  s.setValue("charts/group_by", static_cast<int>(training_->groupBy()));
  s.setValue("charts/group_key", training_->groupKey());
  s.setValue("charts/band", static_cast<int>(training_->band()));
  s.setValue("charts/grouped_runs", training_->showGroupedRuns());
  s.setValue("runs/max_parallel", queue_->maxParallel());
}

void MainWindow::setDark(bool on) {
  dark_ = on;
  if (theme_action_) theme_action_->setChecked(on);
  QApplication::setStyle(QStyleFactory::create("Fusion"));
  QApplication::setPalette(on ? darkPalette() : QApplication::style()->standardPalette());
  training_->setDark(on);
  eval_->setDark(on);
  study_->setDark(on);
  saveSettings();
}

void MainWindow::setMaxParallel(int n) {
  if (n == queue_->maxParallel()) return;
  queue_->setMaxParallel(n);
  saveSettings();
}

void MainWindow::refreshAll() {
  runs_->refresh();
  eval_->refresh();
  inspect_->refresh();
  compare_->invalidate();
  study_->invalidate();
}

int MainWindow::runningCount() const {
  int n = 0;
  for (const auto& w : workers_) n += w->running();
  return n;
}

void MainWindow::enqueue(const QString& name, const QStringList& settings, int processes) {
  queue_->enqueue(name, settings, false, processes);
}

void MainWindow::startQueue() {
  queue_->start();
}

const std::vector<QueuedRun>& MainWindow::queue() const {
  return queue_->runs();
}

int MainWindow::maxParallel() const {
  return queue_->maxParallel();
}

void MainWindow::updatePending() {
  std::vector<PendingRun> pending;
  for (const auto& q : queue_->runs()) pending.push_back(pendingRun(q, RunState::kQueued, {}));
  pending.insert(pending.end(), failed_.begin(), failed_.end());
  // Launched runs not in the store yet (preparing their data): a row from the start.
  for (const auto& w : workers_)
    if (w->running() && !w->hasStarted()) pending.push_back({w->name(), RunState::kRunning});
  runs_->setPending(std::move(pending));
  // The Study panel's grid: queued runs, and runs handed to a worker that the store may not hold
  // yet, are not queued twice.
  QStringList queued, training;
  for (const auto& q : queue_->runs()) queued << q.name;
  for (const auto& w : workers_)
    if (w->running()) training << w->name();
  study_->setBusyRuns(queued, training);
  updateStatus();
}

void MainWindow::updateStatus() {
  status_->setText(QString("%1 | %2 running, %3 queued")
                       .arg(QString::fromStdString(deviceSummary()))
                       .arg(runningCount())
                       .arg(queue_->runs().size()));
}

TrainingWorker* MainWindow::launch(const QString& name, const QStringList& settings, bool resume,
                                   int processes) {
  auto worker =
      std::make_unique<TrainingWorker>(workspace_, name, settings, nullptr, resume, processes);
  TrainingWorker* w = worker.get();
  auto failed_early = [this, name, settings](const QString& message) {
    failed_.push_back(pendingRun({name, settings}, RunState::kFailed, message));
  };
  connect(w, &TrainingWorker::preparing, this,
          [this, w](const QString& what, qint64 done, qint64 total) {
            runs_->runPreparing(w->name(), what, done, total);
          });
  connect(w, &TrainingWorker::started, this, [this](const QString& run, qint64 total) {
    updatePending();                // no longer a launched run without a row of its own
    runs_->runStarted(run, total);  // the row, live from now on
    updateStatus();
    study_->invalidate();
  });
  connect(w, &TrainingWorker::step, this,
          [this, w](qint64 step, double loss, double lr, double sps, double grad, double eta) {
            training_->addStep(w->runName(), step, loss, lr, sps, grad);
            runs_->runStep(w->runName(), step, 0, sps, eta);
          });
  connect(w, &TrainingWorker::validation, this,
          [this, w](qint64 step, const QMap<QString, double>& m) {
            training_->addValidation(w->runName(), step, m);
            runs_->refresh();  // the validation's accuracy and TAR@FAR, from the store
          });
  connect(w, &TrainingWorker::finished, this, [this](const QString& status, const QString& ckpt) {
    refreshAll();
    statusBar()->showMessage("run " + status + ": " + ckpt, 8000);
    queue_->schedule();
    updatePending();
  });
  connect(w, &TrainingWorker::failed, this, [this, w, failed_early](const QString& message) {
    if (!w->hasStarted()) failed_early(message);  // the store never saw it
    refreshAll();
    showWarning(this, "Run failed", w->runName() + ": " + message);  // the other runs go on
    statusBar()->showMessage("run failed: " + message, 8000);
    queue_->schedule();
    updatePending();
  });
  try {
    w->start();
  } catch (const Error& e) {
    const QString message = QString::fromStdString(e.what());
    failed_early(message);
    updatePending();
    showWarning(this, "Cannot launch", message);
    return nullptr;
  }
  workers_.push_back(std::move(worker));
  updatePending();  // the Study panel sees the run as starting
  return w;
}

}  // namespace msconv::ui
