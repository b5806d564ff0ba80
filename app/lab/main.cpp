// msconv-lab: the MSConv Lab workbench (Qt 6).
// usage: msconv-lab [WORKSPACE] [--enqueue NAME SETTINGS]... [--train-queued] [--image FACE]
//                   [--reference FACE] [--screenshot DIR | --report DIR]
//   WORKSPACE     runs, run store and run queue (default ./runs)
//   --enqueue     add a run to the workspace's queue unless the workspace already has a run or
//                 queued run of that name; SETTINGS: key=value pairs separated by spaces (as
//                 msconv train --set). The window opens with the queue ready: Train queued (Ctrl+R)
//   --train-queued  start the queue at once (what Train queued, Ctrl+R, does); with --screenshot,
//                 the screenshots wait until the queued runs have trained
//   --image       open the Inspect panel on this face image (and inspect it in a report)
//   --reference   Grad-CAM's cosine target
//   --screenshot  show the window, evaluate every run, draw the inspection grids, save a PNG
//                 of each panel into DIR and exit (for documentation and checks under Xvfb)
//   --report      no window: write the workspace report (charts, ROC, inspection figures,
//                 metrics.json, compare.csv, index.html) into DIR, print its index.html and exit;
//                 works without a display
#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFileInfo>
#include <QTabWidget>
#include <QTimer>

#include <cstdio>
#include <cstdlib>

#include "msconv/error.h"
#include "msconv/runtime.h"
#include "msconv/ui/compare_panel.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/engine.h"
#include "msconv/ui/eval_panel.h"
#include "msconv/ui/inspect_panel.h"
#include "msconv/ui/main_window.h"
#include "msconv/ui/report.h"
#include "msconv/ui/training_panel.h"
#include "msconv/workspace/workspace.h"

namespace {

// Runs the event loop until `done` or `ms` elapsed, checking twenty times a second (sleeping in
// between: the trainers get the cores).
template <typename Pred>
void waitFor(Pred done, int ms) {
  QElapsedTimer t;
  t.start();
  QEventLoop loop;
  QTimer tick;
  QObject::connect(&tick, &QTimer::timeout, [&] {
    if (done() || t.elapsed() >= ms) loop.quit();
  });
  tick.start(50);
  if (!done()) loop.exec();
}

int usage() {
  std::fprintf(stderr,
               "usage: msconv-lab [WORKSPACE] [--enqueue NAME SETTINGS]... [--train-queued] "
               "[--image FACE] [--reference FACE] [--screenshot DIR | --report DIR]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  msconv::keepFreedMemory();
  bool report_mode = false;
  for (int i = 1; i < argc; ++i) report_mode |= std::string(argv[i]) == "--report";
  // A report opens no window: Qt's offscreen platform draws the same charts, display or not.
  if (report_mode) setenv("QT_QPA_PLATFORM", "offscreen", 1);
  QApplication app(argc, argv);
  QApplication::setApplicationName("msconv-lab");
  QApplication::setOrganizationName("MSConvLab");
  QString workspace = "runs", image, reference, shots, report;
  bool train_queued = false;
  std::vector<msconv::ui::QueuedRun> enqueue;
  const QStringList args = QApplication::arguments();
  for (int i = 1; i < args.size(); ++i) {
    if (args[i] == "--image" && i + 1 < args.size()) {
      image = args[++i];
    } else if (args[i] == "--reference" && i + 1 < args.size()) {
      reference = args[++i];
    } else if (args[i] == "--screenshot" && i + 1 < args.size()) {
      shots = args[++i];
    } else if (args[i] == "--report" && i + 1 < args.size()) {
      report = args[++i];
    } else if (args[i] == "--train-queued") {
      train_queued = true;
    } else if (args[i] == "--enqueue" && i + 2 < args.size()) {
      enqueue.push_back({args[i + 1], args[i + 2].split(' ', Qt::SkipEmptyParts)});
      i += 2;
    } else if (args[i].startsWith("-")) {
      return usage();
    } else {
      workspace = args[i];
    }
  }
  msconv::setThreads(0);
  if (!report.isEmpty()) {
    try {
      const QStringList files = msconv::ui::writeReport(workspace, report, {image, reference});
      std::printf("%s\n", qPrintable(QFileInfo(files.back()).absoluteFilePath()));
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "msconv-lab: %s\n", e.what());
      return 1;
    }
  }
  if (!enqueue.empty()) {
    try {  // the queue file first, so the window opens on it
      const std::string file = msconv::workspace::Workspace(workspace.toStdString()).queueFile();
      auto queue = msconv::workspace::readQueue(file);
      QStringList taken = msconv::ui::runNames(workspace);
      for (const auto& q : queue) taken << QString::fromStdString(q.name);
      for (const auto& e : enqueue) {
        if (taken.contains(e.name)) continue;
        msconv::workspace::QueuedRun q{e.name.toStdString(), {}};
        for (const auto& kv : e.settings) q.settings.push_back(kv.toStdString());
        queue.push_back(std::move(q));
      }
      msconv::workspace::writeQueue(file, queue);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "msconv-lab: %s\n", e.what());
      return 1;
    }
  }
  msconv::ui::MainWindow w(workspace);
  w.resize(1280, 820);
  w.show();
  if (!shots.isEmpty()) msconv::ui::setWarningBoxesEnabled(false);  // nothing over the panels
  if (train_queued) {
    w.tabs()->setCurrentWidget(w.training());
    w.startQueue();
  }
  if (!reference.isEmpty()) w.inspect()->setReference(reference);
  if (!image.isEmpty()) w.inspect()->setImage(image);
  if (shots.isEmpty()) return QApplication::exec();

  // Screenshot mode: let the queue train, fill every panel, then grab each.
  if (train_queued) {
    waitFor([&] { return w.queue().empty() && w.runningCount() == 0; }, 3600 * 1000);
    std::printf("trained the queue\n");
    w.evaluation()->refresh();
    w.inspect()->refresh();
    w.compare()->refresh();
    if (!image.isEmpty()) w.inspect()->setImage(image);
  }
  QDir().mkpath(shots);
  auto* tabs = qobject_cast<QTabWidget*>(w.centralWidget());
  int updates = 0;
  QObject::connect(w.inspect(), &msconv::ui::InspectPanel::updated, [&] { ++updates; });
  bool evaluated = false;
  QObject::connect(w.evaluation(), &msconv::ui::EvalPanel::allEvaluated, [&] { evaluated = true; });
  QObject::connect(w.evaluation(), &msconv::ui::EvalPanel::evaluationFailed, [&] {
    if (w.evaluation()->checkpointBox()->count() == 0) evaluated = true;
  });
  const bool trained = w.evaluation()->checkpointBox()->count() > 0;
  w.evaluation()->evaluateAll();
  waitFor([&] { return evaluated && (image.isEmpty() || !trained || updates >= 2); }, 300000);
  const char* names[] = {"runs", "training", "evaluation", "inspect", "compare"};
  for (int i = 0; i < tabs->count() && i < 5; ++i) {
    tabs->setCurrentIndex(i);
    waitFor([] { return false; }, 300);
    const QString path = QDir(shots).filePath(QString("lab-%1.png").arg(names[i]));
    if (!w.grab().save(path)) {
      std::fprintf(stderr, "msconv-lab: cannot write %s\n", qPrintable(path));
      return 1;
    }
    std::printf("%s\n", qPrintable(path));
  }
  return 0;
}
