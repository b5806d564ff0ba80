// How the workbench shows a failure the user must see: a non-modal warning box over `parent`
// (the other runs and panels go on). Screenshot mode and the widget tests turn the boxes off;
// the message still reaches the panel's own label and the status bar.
#pragma once

#include <QFileDialog>
#include <QString>
#include <functional>

class QWidget;

namespace msconv::ui {

void setWarningBoxesEnabled(bool enabled);
void showWarning(QWidget* parent, const QString& title, const QString& message);

// Every file dialog of the workbench goes through these three. They open read-only
// (QFileDialog::ReadOnly): Qt's own dialog otherwise renames and deletes files and folders,
// recursively, from the Delete key, and these machines run as root. Widget tests and the monkey
// set a stub that answers instead, with prepared paths, so that no real dialog ever opens.
enum class FileDialogKind { kOpen, kSave, kDirectory };
struct FileDialogRequest {
  FileDialogKind kind;
  QString caption, dir, filter;
  QFileDialog::Options options;
};
using FileDialogStub = std::function<QString(const FileDialogRequest&)>;
void setFileDialogStub(FileDialogStub stub);  // an empty function brings the real dialogs back
QString openFileName(QWidget* parent, const QString& caption, const QString& dir,
                     const QString& filter);
QString saveFileName(QWidget* parent, const QString& caption, const QString& dir,
                     const QString& filter);
// An existing folder (a workspace, an identity-folder training set, an IJB folder); "" when
// cancelled. Read-only too, folders only.
QString existingDirectory(QWidget* parent, const QString& caption, const QString& dir);

}  // namespace msconv::ui
