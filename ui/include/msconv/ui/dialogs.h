// How the workbench shows a failure the user must see: a non-modal warning box over `parent`
// (the other runs and panels go on). Screenshot mode and the widget tests turn the boxes off;
// the message still reaches the panel's own label and the status bar.
#pragma once

#include <QString>

class QWidget;

namespace msconv::ui {

void setWarningBoxesEnabled(bool enabled);
void showWarning(QWidget* parent, const QString& title, const QString& message);

}  // namespace msconv::ui
