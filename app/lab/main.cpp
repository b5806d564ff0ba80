// msconv-lab: the MSConv Lab workbench (Qt 6). usage: msconv-lab [WORKSPACE] (default: ./runs)
#include <QApplication>

#include "msconv/runtime.h"
#include "msconv/ui/main_window.h"

int main(int argc, char** argv) {
  msconv::keepFreedMemory();
  QApplication app(argc, argv);
  QApplication::setApplicationName("msconv-lab");
  const QString workspace = argc > 1 ? QString::fromLocal8Bit(argv[1]) : QString("runs");
  msconv::ui::MainWindow w(workspace);
  w.resize(1280, 820);
  w.show();
  return QApplication::exec();
}
