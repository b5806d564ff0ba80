#include "msconv/ui/dialogs.h"

#include <QMessageBox>

#include <atomic>

namespace msconv::ui {
namespace {
std::atomic<bool> g_enabled{true};
FileDialogStub g_stub;  // GUI thread only

QString fileName(QWidget* parent, FileDialogKind kind, const QString& caption, const QString& dir,
                 const QString& filter) {
  QFileDialog::Options options = QFileDialog::ReadOnly;
  if (kind == FileDialogKind::kDirectory) options |= QFileDialog::ShowDirsOnly;
  const FileDialogRequest request{kind, caption, dir, filter, options};
  if (g_stub) return g_stub(request);
  if (kind == FileDialogKind::kDirectory)
    return QFileDialog::getExistingDirectory(parent, caption, dir, request.options);
  return kind == FileDialogKind::kOpen
             ? QFileDialog::getOpenFileName(parent, caption, dir, filter, nullptr, request.options)
             : QFileDialog::getSaveFileName(parent, caption, dir, filter, nullptr, request.options);
}
}  // namespace

void setFileDialogStub(FileDialogStub stub) {
  g_stub = std::move(stub);
}

QString openFileName(QWidget* parent, const QString& caption, const QString& dir,
                     const QString& filter) {
  return fileName(parent, FileDialogKind::kOpen, caption, dir, filter);
}

QString saveFileName(QWidget* parent, const QString& caption, const QString& dir,
                     const QString& filter) {
  return fileName(parent, FileDialogKind::kSave, caption, dir, filter);
}

QString existingDirectory(QWidget* parent, const QString& caption, const QString& dir) {
  return fileName(parent, FileDialogKind::kDirectory, caption, dir, {});
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
