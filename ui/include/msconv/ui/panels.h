// The Evaluation, Inspect and Compare panels of msconv-lab. Work happens off the GUI thread; the
// panels receive plain values and images.
#pragma once

#include <QImage>
#include <QString>
#include <QWidget>

#include <atomic>
#include <thread>

class QComboBox;
class QLineEdit;
class QLabel;
class QListWidget;
class QPushButton;
class QTableWidget;
class QCustomPlot;
class QSpinBox;
class QDoubleSpinBox;
class QCheckBox;

namespace msconv::ui {

class InspectQueue;
struct SetEvaluation;

class EvalPanel : public QWidget {
  Q_OBJECT
 public:
  explicit EvalPanel(QString workspace, QWidget* parent = nullptr);
  ~EvalPanel() override;
  void refresh();   // the runs' checkpoints
  void evaluate();  // the selected checkpoint, in the background
  int resultRows() const;
  int rocCurves() const;
  QComboBox* checkpointBox() const { return checkpoint_; }
  QLineEdit* binsEdit() const { return bins_; }

 Q_SIGNALS:
  void evaluated(const QString& label, const std::vector<SetEvaluation>& sets);
  void evaluationFailed(const QString& message);

 private:
  void show(const QString& label, const std::vector<SetEvaluation>& sets);
  QString workspace_;
  QComboBox* checkpoint_;
  QLineEdit* bins_;
  QPushButton* run_;
  QLabel* message_;
  QTableWidget* table_;
  QCustomPlot* roc_;
  std::thread worker_;
};

class InspectPanel : public QWidget {
  Q_OBJECT
 public:
  explicit InspectPanel(QString workspace, QWidget* parent = nullptr);
  void refresh();
  void setImage(const QString& path);
  void request();  // both grids for the current controls (superseding queued requests)
  const QImage& featureImage() const { return feature_; }
  const QImage& camImage() const { return cam_; }
  InspectQueue* queue() const { return queue_; }

 Q_SIGNALS:
  void updated(const QString& kind);

 protected:
  void dragEnterEvent(class QDragEnterEvent* e) override;
  void dropEvent(class QDropEvent* e) override;

 private:
  QString workspace_;
  QLineEdit* image_;
  QLineEdit* reference_;
  QListWidget* models_;
  QComboBox *layer_, *method_, *target_, *colormap_;
  QDoubleSpinBox* alpha_;
  QLabel *feature_view_, *cam_view_, *message_;
  QImage feature_, cam_;
  InspectQueue* queue_;
};

class ComparePanel : public QWidget {
  Q_OBJECT
 public:
  explicit ComparePanel(QString workspace, QWidget* parent = nullptr);
  void refresh();
  int rows() const;
  bool exportCsv(const QString& path) const;

 private:
  QString workspace_;
  QTableWidget* table_;
};

}  // namespace msconv::ui
