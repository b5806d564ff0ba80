// Event-loop stall harness for msconv-lab: the main window trains a tiny run on a worker thread
// while a 5 ms timer on the GUI thread records how late each tick fires; prints the p50, p99 and
// worst stall as one JSON line. Run with QT_QPA_PLATFORM=offscreen (./lab bench does).
// Usage: msconv_ui_stall [--history N] (N: a finished run's logged steps drawn beside it).
#include <QApplication>
#include <QElapsedTimer>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTimer>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "msconv/runtime.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/main_window.h"
#include "msconv/ui/training_panel.h"
#include "msconv/ui/training_worker.h"

int main(int argc, char** argv) {
  msconv::keepFreedMemory();
  QApplication app(argc, argv);
  QTemporaryDir ws;
  msconv::ui::setWarningBoxesEnabled(false);
  msconv::ui::MainWindow w(ws.path());
  w.resize(1280, 820);
  w.show();
  w.tabs()->setCurrentWidget(w.training());  // the six live charts are drawn while it trains
  // --history N: a finished run's N logged steps on the same charts (a long run beside the new
  // one: every replot draws its curves too).
  int history = 0;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--history") history = std::atoi(argv[i + 1]);
  for (int s = 1; s <= history; ++s) {
    const double noise = 0.2 * std::sin(s * 1.7), t = 1.7e9 + s * 0.5;
    w.training()->addStep("history", s, 8.0 * std::exp(-s / 4000.0) + 1 + noise,
                          0.1 * (1 + std::cos(s * 3.14159 / history)), 300 + 40 * noise, 2 + noise,
                          t);
  }
  auto* worker =
      w.launch("stall", {"model.arch=msnet-tiny", "train.batch_size=32", "train.max_steps=120",
                         "data.synthetic_identities=40", "data.synthetic_images_per_id=8",
                         "train.log_every=1", "train.val_every=40"});
  if (!worker) return 1;
  std::vector<double> late;
  QElapsedTimer clock;
  clock.start();
  qint64 last = clock.nsecsElapsed();
  QTimer tick;
  tick.setTimerType(Qt::PreciseTimer);
  tick.setInterval(5);
  QObject::connect(&tick, &QTimer::timeout, [&] {
    const qint64 now = clock.nsecsElapsed();
    late.push_back(std::max(0.0, (now - last) / 1e6 - 5.0));  // ms beyond the 5 ms period
    last = now;
  });
  bool done = false;
  QObject::connect(worker, &msconv::ui::TrainingWorker::finished, [&] { done = true; });
  QObject::connect(worker, &msconv::ui::TrainingWorker::failed, [&] { done = true; });
  tick.start();
  while (!done) QApplication::processEvents(QEventLoop::WaitForMoreEvents, 100);
  tick.stop();
  std::sort(late.begin(), late.end());
  auto q = [&](double p) {
    return late.empty() ? 0.0 : late[static_cast<size_t>(p * (late.size() - 1))];
  };
  std::printf("{\"ticks\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
              late.size(), q(0.5), q(0.99), late.empty() ? 0.0 : late.back());
  return 0;
}
