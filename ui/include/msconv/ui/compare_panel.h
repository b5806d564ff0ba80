// The Compare panel: every run of the workspace side by side (operator, parameters, MACs,
// training speed, the last validation's accuracy and TAR@FAR), exported as CSV.
#pragma once

#include <QString>
#include <QWidget>

class QTableWidget;

namespace msconv::ui {

class ComparePanel : public QWidget {
  Q_OBJECT
 public:
  explicit ComparePanel(QString workspace, QWidget* parent = nullptr);
  // Re-reads the store and measures each run's model (parameters, MACs): now.
  void refresh();
  // The store changed: refresh now if the panel is on screen, else when it is next shown (the
  // measurement builds every run's model, which start-up need not wait for).
  void invalidate();
  bool exportCsv(const QString& path) const;

 protected:
  void showEvent(QShowEvent* e) override;

 private:
  QString workspace_;
  QTableWidget* table_;
  bool stale_ = true;
};

}  // namespace msconv::ui
