#include "msconv/ui/dialogs.h"

#include <QMessageBox>

#include <atomic>

namespace msconv::ui {
namespace {
std::atomic<bool> g_enabled{true};
}

void setWarningBoxesEnabled(bool enabled) {
  g_enabled = enabled;
}

void showWarning(QWidget* parent, const QString& title, const QString& message) {
  if (!g_enabled) return;
  auto* box = new QMessageBox(QMessageBox::Warning, title, message, QMessageBox::Ok, parent);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();
}

}  // namespace msconv::ui
