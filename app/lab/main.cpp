// msconv-lab: the MSConv Lab workbench (Qt 6).
// usage: msconv-lab [WORKSPACE] [--image FACE] [--screenshot DIR]
//   WORKSPACE     runs and run store (default ./runs)
//   --image       open the Inspect panel on this face image
//   --screenshot  show the window, evaluate the first run, draw the inspection grids, save a PNG
//                 of each panel into DIR and exit (for documentation and checks under Xvfb)
#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QTabWidget>

#include <cstdio>

#include "msconv/runtime.h"
#include "msconv/ui/main_window.h"
#include "msconv/ui/panels.h"

namespace {

// Runs the event loop until `done` or `ms` elapsed.
template <typename Pred>
void waitFor(Pred done, int ms) {
  QElapsedTimer t;
  t.start();
  while (!done() && t.elapsed() < ms) QApplication::processEvents(QEventLoop::AllEvents, 50);
}

}  // namespace

int main(int argc, char** argv) {
  msconv::keepFreedMemory();
  QApplication app(argc, argv);
  QApplication::setApplicationName("msconv-lab");
  QApplication::setOrganizationName("MSConvLab");
  QString workspace = "runs", image, shots;
  const QStringList args = QApplication::arguments();
  for (int i = 1; i < args.size(); ++i) {
    if (args[i] == "--image" && i + 1 < args.size()) {
      image = args[++i];
    } else if (args[i] == "--screenshot" && i + 1 < args.size()) {
      shots = args[++i];
    } else if (args[i].startsWith("-")) {
      std::fprintf(stderr, "usage: msconv-lab [WORKSPACE] [--image FACE] [--screenshot DIR]\n");
      return 2;
    } else {
      workspace = args[i];
    }
  }
  msconv::ui::MainWindow w(workspace);
  w.resize(1280, 820);
  w.show();
  if (!image.isEmpty()) w.inspect()->setImage(image);
  if (shots.isEmpty()) return QApplication::exec();

  // Screenshot mode: fill every panel, then grab each.
  QDir().mkpath(shots);
  auto* tabs = qobject_cast<QTabWidget*>(w.centralWidget());
  int updates = 0;
  QObject::connect(w.inspect(), &msconv::ui::InspectPanel::updated, [&] { ++updates; });
  bool evaluated = false;
  QObject::connect(w.evaluation(), &msconv::ui::EvalPanel::evaluated, [&] { evaluated = true; });
  w.evaluation()->evaluate();
  waitFor([&] { return evaluated && (image.isEmpty() || updates >= 2); }, 300000);
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
