// msconv-lab: the MSConv Lab workbench (Qt 6).
// usage: msconv-lab [WORKSPACE | --workspace DIR] [--enqueue NAME SETTINGS]... [--train-queued]
//                   [--image FACE] [--reference FACE] [--screenshot DIR | --report DIR]
//   WORKSPACE     runs, run store and run queue (default ./runs); --workspace DIR as msconv
//                 takes it
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
#include <set>
#include <string>

#include "msconv/error.h"
#include "msconv/runtime.h"
#include "msconv/store/run_store.h"
#include "msconv/ui/compare_panel.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/engine.h"
#include "msconv/ui/eval_panel.h"
#include "msconv/ui/inspect_panel.h"
#include "msconv/ui/main_window.h"
#include "msconv/ui/report.h"
#include "msconv/ui/run_queue.h"
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

const char* kUsage =
    "usage: msconv-lab [WORKSPACE | --workspace DIR] [--enqueue NAME SETTINGS]... "
    "[--train-queued]\n"
    "                  [--image FACE] [--reference FACE] [--screenshot DIR | --report DIR]\n"
    "       msconv-lab --help | --version\n\n"
    "  WORKSPACE, --workspace DIR  runs, run store and run queue (default ./runs)\n"
    "  --enqueue NAME SETTINGS     queue a run unless one of that name exists; SETTINGS:\n"
    "                              key=value pairs separated by spaces (msconv train --set)\n"
    "  --train-queued              start the queue at once (Train queued, Ctrl+R)\n"
    "  --image FACE                open Inspect on this face image\n"
    "  --reference FACE            Grad-CAM's cosine target\n"
    "  --screenshot DIR            save a PNG of each panel into DIR and exit\n"
    "  --report DIR                no window: write the workspace report into DIR and exit\n";

// A Qt option as QApplication reads it: "-style", also written "--style", "-style=NAME" or
// "--style=NAME"; "" for anything else.
std::string qtOption(std::string a) {
  if (a.rfind("--", 0) == 0) a.erase(0, 1);
  if (a.size() < 2 || a[0] != '-') return "";
  return a.substr(0, a.find('='));
}

int fail(const std::string& message) {
  std::fprintf(stderr, "msconv-lab: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  msconv::keepFreedMemory();
  // The arguments are read before Qt starts, so that --help, --version and a mistake are
  // answered without a display. Single-dash options other than -h are Qt's (-platform NAME,
  // -style NAME, -reverse, ...): left to QApplication.
  static const std::set<std::string> qt_with_value = {
      "-platform",     "-platformpluginpath", "-platformtheme", "-plugin",     "-qwindowgeometry",
      "-qwindowtitle", "-qwindowicon",        "-style",         "-stylesheet", "-session",
      "-display",      "-geometry",           "-qmljsdebugger"};
  static const std::set<std::string> qt_flags = {"-reverse", "-widgetcount", "-nograb", "-dograb",
                                                 "-sync"};
  QString workspace = QString::fromUtf8(msconv::workspace::kDefaultWorkspace), image, reference,
          shots, report;
  bool train_queued = false, workspace_given = false;
  std::vector<msconv::ui::QueuedRun> enqueue;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], value;
    const bool inline_value = a.rfind("--", 0) == 0 && a.find('=') != std::string::npos;
    if (inline_value) value = a.substr(a.find('=') + 1), a = a.substr(0, a.find('='));
    auto take = [&] {  // the option's value: after '=' or the next argument
      if (inline_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("msconv-lab %s (revision %s)\n", msconv::store::projectVersion().c_str(),
                  msconv::store::sourceRevision().c_str());
      return 0;
    } else if (a == "--image" || a == "--reference" || a == "--screenshot" || a == "--report" ||
               a == "--workspace") {
      if (!take() || value.empty()) return fail("option '" + a + "' needs a value");
      const QString v = QString::fromLocal8Bit(value.c_str());
      if (a == "--image") image = v;
      if (a == "--reference") reference = v;
      if (a == "--screenshot") shots = v;
      if (a == "--report") report = v;
      if (a == "--workspace") {
        if (workspace_given) return fail("two workspaces given ('" + value + "')");
        workspace = v;
        workspace_given = true;
      }
    } else if (a == "--train-queued" && !inline_value) {
      train_queued = true;
    } else if (a == "--enqueue" && !inline_value) {
      if (i + 2 >= argc) return fail("option '--enqueue' needs a NAME and SETTINGS");
      enqueue.push_back({QString::fromLocal8Bit(argv[i + 1]),
                         QString::fromLocal8Bit(argv[i + 2]).split(' ', Qt::SkipEmptyParts)});
      i += 2;
    } else if (const std::string q = qtOption(argv[i]); qt_with_value.count(q)) {
      if (std::string(argv[i]).find('=') == std::string::npos) ++i;  // Qt's option, its value
    } else if (qt_flags.count(q)) {
    } else if (a == "--train-queued" || a == "--enqueue") {
      return fail("option '" + a + "' takes no '=' value");
    } else if (a.size() > 1 && a[0] == '-') {
      return fail("unknown option '" + a + "' (see --help)");
    } else {
      if (workspace_given) return fail("two workspaces given ('" + a + "')");
      workspace = QString::fromLocal8Bit(a.c_str());
      workspace_given = true;
    }
  }
  // Every queued run's settings checked as the New Run form checks them, key by key.
  for (const auto& e : enqueue) {
    const QString error = msconv::ui::settingsError(e.settings);
    if (!error.isEmpty())
      return fail("--enqueue " + e.name.toStdString() + ": " + error.toStdString());
  }
  try {
    msconv::setThreads(0);  // MSCONV_THREADS=abc is an error here too
  } catch (const std::exception& e) {
    std::fprintf(stderr, "msconv-lab: %s\n", e.what());
    return 1;
  }
  // A report opens no window: Qt's offscreen platform draws the same charts, display or not.
  if (!report.isEmpty()) setenv("QT_QPA_PLATFORM", "offscreen", 1);
  QApplication app(argc, argv);
  QApplication::setApplicationName("msconv-lab");
  QApplication::setOrganizationName("MSConvLab");
  if (!report.isEmpty()) {
    try {
      // A report only reads: a workspace that does not exist is an error, not a new empty one.
      msconv::workspace::Workspace(workspace.toStdString()).requireExisting();
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
