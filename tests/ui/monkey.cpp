// The workbench under abuse: thousands of random clicks, double clicks, right clicks, key
// presses, drags, wheel turns and file drops (real and corrupt files) across every panel of
// msconv-lab while a run trains. The process must not crash, its event loop must never stall for
// a second (a watchdog timer measures every gap), and the run's store and files must be whole
// afterwards.
//
// How it is fenced (Qt's own file dialog deletes files and folders from the Delete key):
// - every file dialog is replaced by ui::setFileDialogStub, which answers with prepared paths in
//   the monkey's temporary folder; no real file dialog can open;
// - HOME, the settings, the workspace, the working directory and every prepared file live in one
//   temporary folder;
// - run as root, it first makes that folder belong to the unprivileged user `nobody` and drops to
//   it (setgid, setuid), so that nothing outside the folder, the checkout included, is writable;
//   where it cannot drop, it refuses to start.
//
// Usage: msconv_ui_monkey [--actions N] [--seconds S] [--seed K]. Prints its figures and exits 0
// when every check holds.
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <QAbstractButton>
#include <QAction>
#include <QApplication>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QMenu>
#include <QMimeData>
#include <QProcess>
#include <QSettings>
#include <QTabWidget>
#include <QTest>
#include <QTimer>
#include <QToolButton>
#include <QUrl>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "msconv/store/run_store.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/main_window.h"
#include "msconv/ui/training_worker.h"

using namespace msconv;
namespace fs = std::filesystem;

namespace {

struct Options {
  int actions = 3000;
  double seconds = 120;
  unsigned seed = 1;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--actions")
      o.actions = std::atoi(argv[i + 1]);
    else if (k == "--seconds")
      o.seconds = std::atof(argv[i + 1]);
    else if (k == "--seed")
      o.seed = static_cast<unsigned>(std::atoi(argv[i + 1]));
  }
  return o;
}

// The fence: a temporary folder that becomes the whole writable world of the process.
std::string fence() {
  char tmpl[] = "/tmp/msconv-monkey-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("msconv_ui_monkey: mkdtemp");
    std::exit(2);
  }
  const std::string dir = tmpl;
  fs::create_directories(dir + "/home");
  if (::geteuid() == 0) {
    const passwd* nobody = ::getpwnam("nobody");
    if (!nobody) {
      std::fprintf(stderr, "msconv_ui_monkey: refusing to run as root: no user 'nobody'\n");
      std::exit(2);
    }
    // Xvfb's authority file (xvfb-run's, readable by root only) goes with us.
    if (const char* xauth = std::getenv("XAUTHORITY")) {
      std::error_code ec;
      fs::copy_file(xauth, dir + "/home/.Xauthority", ec);
      if (!ec) ::setenv("XAUTHORITY", (dir + "/home/.Xauthority").c_str(), 1);
    }
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (::chown(e.path().c_str(), nobody->pw_uid, nobody->pw_gid) != 0) std::exit(2);
    if (::chown(dir.c_str(), nobody->pw_uid, nobody->pw_gid) != 0 || ::setgroups(0, nullptr) != 0 ||
        ::setgid(nobody->pw_gid) != 0 || ::setuid(nobody->pw_uid) != 0 || ::setuid(0) == 0) {
      std::fprintf(stderr, "msconv_ui_monkey: refusing to run as root: cannot drop to nobody\n");
      std::exit(2);
    }
  }
  ::setenv("HOME", (dir + "/home").c_str(), 1);
  ::setenv("XDG_CONFIG_HOME", (dir + "/home/.config").c_str(), 1);
  ::setenv("XDG_RUNTIME_DIR", (dir + "/home").c_str(), 1);
  ::chmod((dir + "/home").c_str(), 0700);
  if (::chdir(dir.c_str()) != 0) std::exit(2);
  return dir;
}

// What the stubbed dialogs answer and what is dropped: real and corrupt files.
std::vector<QString> prepareFiles(const QString& dir) {
  const QString syn = dir + "/faces";
  if (QProcess::execute(MSCONV_BIN,
                        {"data", "synth", "-o", syn, "--identities", "4", "--images-per-id", "2",
                         "--pairs", "20", "--val-identities", "4"}) != 0) {
    std::fprintf(stderr, "msconv_ui_monkey: msconv data synth failed\n");
    std::exit(2);
  }
  std::vector<QString> files = {syn + "/val.bin"};
  for (const auto& e : fs::recursive_directory_iterator(syn.toStdString()))
    if (e.path().extension() == ".jpg" && files.size() < 4)
      files.push_back(QString::fromStdString(e.path().string()));
  auto junk = [&](const QString& name, const QByteArray& bytes) {
    QFile f(dir + "/" + name);
    if (f.open(QIODevice::WriteOnly)) f.write(bytes);
    files.push_back(f.fileName());
  };
  junk("corrupt.jpg", QByteArray("\xff\xd8\xff\xe0 not really a jpeg", 24));
  junk("corrupt.ckpt", "PK\x03\x04 a zip that stops here");
  junk("corrupt.bin", "\x80\x04\x95 a pickle cut short");
  junk("empty.png", "");
  files.push_back(dir + "/no-such-file.ckpt");
  files.push_back(dir + "/exports/figure.png");  // save dialogs write here
  files.push_back(dir + "/exports/curves.csv");
  files.push_back(dir + "/exports/curves.pdf");
  files.push_back(QString());  // a cancelled dialog
  QDir().mkpath(dir + "/exports");
  return files;
}

// Widgets a person could reach now: visible and enabled, in any top-level window (menus, boxes),
// but for the toolbar's Stop and Pause.
std::vector<QWidget*> reachable() {
  std::vector<QWidget*> out;
  for (QWidget* top : QApplication::topLevelWidgets()) {
    if (!top->isVisible()) continue;
    out.push_back(top);
    for (QWidget* w : top->findChildren<QWidget*>()) {
      if (!w->isVisible() || !w->isEnabled() || w->width() <= 0 || w->height() <= 0) continue;
      if (auto* b = qobject_cast<QToolButton*>(w);
          b && b->defaultAction() &&
          (b->defaultAction()->text() == "Stop" || b->defaultAction()->text() == "Pause" ||
           b->defaultAction()->text() == "Resume"))
        continue;
      out.push_back(w);
    }
  }
  return out;
}

// A widget as a person would name it: its class, object name and text.
std::string describe(QWidget* w) {
  std::string out = w->metaObject()->className();
  if (!w->objectName().isEmpty()) out += " '" + w->objectName().toStdString() + "'";
  if (auto* b = qobject_cast<QAbstractButton*>(w); b && !b->text().isEmpty())
    out += " \"" + b->text().toStdString() + "\"";
  if (QWidget* top = w->window(); top && top != w && !top->windowTitle().isEmpty())
    out += " in '" + top->windowTitle().toStdString() + "'";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  const std::string dir = fence();
  const QString qdir = QString::fromStdString(dir);
  QApplication app(argc, argv);
  QApplication::setQuitOnLastWindowClosed(false);  // Quit (Ctrl+Q) closes the window: it reopens
  QCoreApplication::setOrganizationName("MSConvLabMonkey");
  QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, qdir + "/home/.config");
  ui::setWarningBoxesEnabled(true);

  std::mt19937 rng(opt.seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % std::max<size_t>(n, 1)); };
  const std::vector<QString> files = prepareFiles(qdir);
  int dialogs = 0;
  ui::setFileDialogStub([&](const ui::FileDialogRequest&) {
    ++dialogs;
    return files[pick(files.size())];
  });

  const QString ws = qdir + "/lab";
  auto* window = new ui::MainWindow(ws);
  window->resize(1300, 900);
  window->show();
  // The run that trains throughout: long enough to outlast the monkey, stopped at the end.
  const QStringList run_settings = {"model.arch=msnet-tiny",
                                    "train.batch_size=8",
                                    "train.epochs=100000",
                                    "data.synthetic_identities=6",
                                    "data.synthetic_images_per_id=4",
                                    "data.val=",
                                    "train.log_every=1",
                                    "train.checkpoint_every=20",
                                    "train.threads=1",
                                    "data.threads=1",
                                    "telemetry.every=10"};
  window->enqueue("monkey-run", run_settings);
  window->startQueue();

  // The watchdog: a 20 ms timer; the longest gap between its ticks is the longest stall.
  QElapsedTimer clock;
  clock.start();
  // Each long gap is printed with the action that ran last, so that a stall names its cause.
  qint64 last_tick = 0, worst_gap = 0;
  std::vector<qint64> gaps;
  std::string last_action = "start";
  QTimer watchdog;
  QObject::connect(&watchdog, &QTimer::timeout, [&] {
    const qint64 now = clock.elapsed(), gap = now - last_tick;
    if (gap >= 300)
      std::fprintf(stderr, "monkey: %lld ms gap at %.1f s, after %s\n", static_cast<long long>(gap),
                   now / 1000.0, last_action.c_str());
    worst_gap = std::max(worst_gap, gap);
    gaps.push_back(gap);
    last_tick = now;
  });
  watchdog.start(20);

  const std::vector<int> keys = {
      Qt::Key_A,      Qt::Key_Z,         Qt::Key_0,   Qt::Key_7,        Qt::Key_Minus,
      Qt::Key_Period, Qt::Key_Space,     Qt::Key_Tab, Qt::Key_Return,   Qt::Key_Escape,
      Qt::Key_Delete, Qt::Key_Backspace, Qt::Key_Up,  Qt::Key_Down,     Qt::Key_Left,
      Qt::Key_Right,  Qt::Key_Home,      Qt::Key_End, Qt::Key_PageDown, Qt::Key_F5};
  // The window's shortcuts, Quit (Ctrl+Q) among them: a closed window is shown again. Stop and
  // Pause (Ctrl+., Ctrl+P, and their toolbar buttons) are left out so that a run trains
  // throughout; a run stopped from its context menu is followed by a new one.
  const std::vector<QKeySequence> shortcuts = {
      QKeySequence("Ctrl+1"), QKeySequence("Ctrl+2"),       QKeySequence("Ctrl+3"),
      QKeySequence("Ctrl+4"), QKeySequence("Ctrl+5"),       QKeySequence("Ctrl+R"),
      QKeySequence("Ctrl+P"), QKeySequence("Ctrl+."),       QKeySequence("Ctrl+E"),
      QKeySequence("Ctrl+L"), QKeySequence("Ctrl+Shift+T"), QKeySequence("Ctrl+O"),
      QKeySequence("Ctrl+Q"), QKeySequence("Ctrl+Return")};
  auto tab = [&] { return window->tabs()->tabText(window->tabs()->currentIndex()).toStdString(); };
  int done = 0, reopened = 0, drops = 0, tab_switches = 0, closed_popups = 0, relaunched = 0;
  std::vector<int> by_kind(8, 0);

  // One action a tick. The next tick is scheduled before the action runs: an action that opens a
  // nested event loop (a context menu, a modal box) is then followed by more actions inside it,
  // as a person's next clicks would be, instead of waiting for a loop that only they can end.
  constexpr int kPace = 30;  // ms between actions: a few thousand in a couple of minutes
  std::function<void()> tick;
  bool finished = false;
  tick = [&] {
    if (finished) return;
    if (done >= opt.actions || clock.elapsed() > opt.seconds * 1000) {
      finished = true;
      QCoreApplication::exit(0);  // leaves every nested loop too
      return;
    }
    QTimer::singleShot(kPace, tick);
    ++done;
    if (QWidget* popup = QApplication::activePopupWidget(); popup && pick(3) == 0) {
      QTest::keyClick(popup, Qt::Key_Escape);  // menus close as often as a person closes them
      ++closed_popups;
      last_action = "Escape on a menu";
      return;
    }
    if (done % 250 == 0)
      std::fprintf(stderr, "monkey: %d actions, %.0f s, longest gap %lld ms\n", done,
                   clock.elapsed() / 1000.0, static_cast<long long>(worst_gap));
    if (!window->isVisible()) {  // Quit, or the window's close: open it again
      window->show();
      ++reopened;
    }
    if (done % 300 == 0 && window->runningCount() == 0) {  // a person starts another run
      window->enqueue(QString("monkey-run-%1").arg(done), run_settings);
      window->startQueue();
      ++relaunched;
      last_action = "a new run started";
    }
    if (done % 25 == 0) {  // now and then a whole panel, so that every panel is reached
      window->tabs()->setCurrentIndex(static_cast<int>(pick(window->tabs()->count())));
      ++tab_switches;
      last_action = "tab switch to " + tab();
    }
    const auto widgets = reachable();
    if (widgets.empty()) return;
    QWidget* w = widgets[pick(widgets.size())];
    const QPoint at(static_cast<int>(pick(w->width())), static_cast<int>(pick(w->height())));
    const int kind = static_cast<int>(pick(by_kind.size()));
    ++by_kind[kind];
    static const char* const kKinds[] = {"click", "click",    "double click", "right click",
                                         "key",   "shortcut", "drag",         "drop"};
    last_action = std::string(kKinds[kind]) + " on " + describe(w) + " (tab " + tab() + ")";
    switch (kind) {
      case 0:
      case 1:
        QTest::mouseClick(w, Qt::LeftButton, {}, at);
        break;
      case 2:
        QTest::mouseDClick(w, Qt::LeftButton, {}, at);
        break;
      case 3: {  // a right click: context menus open (and are closed by the next actions)
        QContextMenuEvent e(QContextMenuEvent::Mouse, at, w->mapToGlobal(at));
        QApplication::sendEvent(w, &e);
        break;
      }
      case 4: {
        const int key = keys[pick(keys.size())];
        last_action += " " + QKeySequence(key).toString().toStdString();
        QTest::keyClick(w, static_cast<Qt::Key>(key));
        break;
      }
      case 5: {
        const QKeySequence s = shortcuts[pick(shortcuts.size())];
        last_action = "shortcut " + s.toString().toStdString() + " (tab " + tab() + ")";
        QTest::keySequence(window, s);
        break;
      }
      case 6: {  // a drag: press, move, release
        const QPoint to(static_cast<int>(pick(w->width())), static_cast<int>(pick(w->height())));
        QTest::mousePress(w, Qt::LeftButton, {}, at);
        QTest::mouseMove(w, to);
        QTest::mouseRelease(w, Qt::LeftButton, {}, to);
        break;
      }
      case 7: {  // a file dropped, real or corrupt
        QMimeData mime;
        const QString f = files[pick(files.size())];
        mime.setUrls({QUrl::fromLocalFile(f.isEmpty() ? qdir + "/faces" : f)});
        QDragEnterEvent enter(at, Qt::CopyAction, &mime, Qt::LeftButton, {});
        QApplication::sendEvent(w, &enter);
        if (enter.isAccepted()) {
          QDropEvent drop(QPointF(at), Qt::CopyAction, &mime, Qt::LeftButton, {});
          QApplication::sendEvent(w, &drop);
          ++drops;
        }
        break;
      }
    }
  };
  QTimer::singleShot(5, tick);
  app.exec();
  watchdog.stop();
  const double seconds = clock.elapsed() / 1000.0;

  // Stop the runs (the queue waits) and let them write their last checkpoints, then check the
  // workspace.
  window->stopAll();
  QElapsedTimer wait;
  wait.start();
  while (window->runningCount() > 0 && wait.elapsed() < 120000) {
    QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
    QThread::msleep(20);
  }
  const bool stopped = window->runningCount() == 0;
  delete window;

  std::sort(gaps.begin(), gaps.end());
  const qint64 p99 = gaps.empty() ? 0 : gaps[gaps.size() * 99 / 100];
  std::printf(
      "monkey: %d actions in %.1f s (clicks %d, double %d, right %d, keys %d, shortcuts %d, drags "
      "%d, drops offered %d, accepted %d, menus closed %d), %d file dialogs answered, window "
      "reopened %d times, %d tab switches, %d runs started again\n",
      done, seconds, by_kind[0] + by_kind[1], by_kind[2], by_kind[3], by_kind[4], by_kind[5],
      by_kind[6], by_kind[7], drops, closed_popups, dialogs, reopened, tab_switches, relaunched);
  std::printf("event loop: longest gap %lld ms, p99 %lld ms (20 ms timer)\n",
              static_cast<long long>(worst_gap), static_cast<long long>(p99));

  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) {
      std::printf("FAILED: %s\n", what.c_str());
      ++failures;
    }
  };
  check(worst_gap < 1000, "the event loop stalled for " + std::to_string(worst_gap) + " ms");
  check(stopped, "the training run did not stop within 2 minutes");
  try {
    store::RunStore db((ws + "/runs.sqlite").toStdString(), store::RunStore::Access::kRead);
    int runs = 0;
    size_t logged = 0;
    for (const auto& r : db.runs()) {
      ++runs;
      const auto loss = db.metrics(r.id, "loss");
      logged += loss.size();
      bool increasing = true;  // one row per logged step, in order (train.log_every apart)
      for (size_t i = 1; i < loss.size(); ++i) increasing &= loss[i].step > loss[i - 1].step;
      check(increasing, r.name + ": its logged steps repeat or go back");
      for (const auto& a : db.artifacts(r.id))
        check(fs::exists(a.path), r.name + ": listed checkpoint missing: " + a.path);
      std::printf("run %s: %s, %zu steps logged\n", r.name.c_str(), store::statusName(r.status),
                  loss.size());
      if (r.name == "monkey-run")
        check(r.status == store::RunStatus::kStopped || r.status == store::RunStatus::kDone,
              "monkey-run ended " + std::string(store::statusName(r.status)));
    }
    check(runs >= 1, "no run in the store");
    check(logged > 0, "nothing trained while the monkey played");
  } catch (const std::exception& e) {
    check(false, std::string("the store: ") + e.what());
  }
  for (const auto& e : fs::recursive_directory_iterator(ws.toStdString()))
    check(e.path().string().find(".tmp-") == std::string::npos,
          "temporary file left: " + e.path().string());
  std::printf("%d passed, %d failed\n", failures == 0 ? 1 : 0, failures == 0 ? 0 : 1);
  std::error_code ec;
  if (failures == 0)
    fs::remove_all(dir, ec);
  else
    std::printf("kept for a look: %s\n", dir.c_str());
  return failures == 0 ? 0 : 1;
}
