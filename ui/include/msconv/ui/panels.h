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
class QTreeWidget;

namespace msconv::ui {

class InspectQueue;
struct SetEvaluation;

class EvalPanel : public QWidget {
  Q_OBJECT
 public:
  explicit EvalPanel(QString workspace, QWidget* parent = nullptr);
  ~EvalPanel() override;
  void refresh();      // the runs' checkpoints
  void evaluate();     // the selected checkpoint, in the background
  void evaluateAll();  // every listed checkpoint, one after another, in the background
  int resultRows() const;
  int tarRows() const;
  bool quiet = false;  // failures: no dialogs (tests)
  int rocCurves() const;
  QComboBox* checkpointBox() const { return checkpoint_; }
  bool selectRun(const QString& run);  // the run's checkpoint in the list; false when absent
  // Adds a checkpoint file from anywhere (the Open... button); false with a dialog for a file
  // that is not a checkpoint.
  bool addCheckpoint(const QString& path);
  void setDark(bool on);
  QLineEdit* binsEdit() const { return bins_; }

 Q_SIGNALS:
  void evaluated(const QString& label, const std::vector<SetEvaluation>& sets);
  void evaluationFailed(const QString& message);
  void allEvaluated();  // the last of an evaluate() or evaluateAll() is in

 private:
  void show(const QString& label, const std::vector<SetEvaluation>& sets);
  void start(const std::vector<std::pair<QString, QString>>& checkpoints);  // (label, file)
  void fail(const QString& message);  // the message under the controls and in a dialog
  QString workspace_;
  QComboBox* checkpoint_;
  QLineEdit* bins_;
  QPushButton *run_, *run_all_;
  QLabel* message_;
  QTableWidget* table_;
  QTableWidget* tar_table_;
  QCustomPlot* roc_;
  std::thread worker_;
  bool dark_ = false;
};

class InspectPanel : public QWidget {
  Q_OBJECT
 public:
  explicit InspectPanel(QString workspace, QWidget* parent = nullptr);
  ~InspectPanel() override;
  int datasetFaces() const;  // faces listed under "from dataset" (read in the background)
  void refresh();
  void setImage(const QString& path);
  void browse();                           // file dialog for the face image
  void setReference(const QString& path);  // Grad-CAM's target becomes cosine to this face
  // An image from a dataset folder (ImageFolder layout) or the synthetic set the runs trained on.
  void pickFromDataset();
  bool exportPng(const QString& kind, const QString& path) const;  // "featuremaps" or "gradcam"
  QString layer() const;
  QStringList layers() const;  // every operator layer in the tree
  void request();              // both grids for the current controls (superseding queued requests)
  const QImage& featureImage() const { return feature_; }
  const QImage& camImage() const { return cam_; }
  InspectQueue* queue() const { return queue_; }
  bool quiet = false;  // failures: no dialogs (tests)

 Q_SIGNALS:
  void updated(const QString& kind);
  void datasetListed();

 protected:
  void dragEnterEvent(class QDragEnterEvent* e) override;
  void dropEvent(class QDropEvent* e) override;

 private:
  void fillDataset();
  QString workspace_;
  QLineEdit* image_;
  QLineEdit* reference_;
  QListWidget* models_;
  QTreeWidget* layer_tree_;
  QComboBox* dataset_;
  QComboBox *method_, *target_, *colormap_;
  QSpinBox* top_;
  QCheckBox* shared_scale_;
  QString failed_image_;        // the image whose error was last shown in a dialog
  std::thread dataset_thread_;  // lists the training set's faces (a .rec index can be large)
  QDoubleSpinBox* alpha_;
  QLabel *feature_view_, *cam_view_, *message_;
  QImage feature_, cam_;
  InspectQueue* queue_;
};

class ComparePanel : public QWidget {
  Q_OBJECT
 public:
  explicit ComparePanel(QString workspace, QWidget* parent = nullptr);
  // Re-reads the store and measures each run's model (parameters, MACs): now.
  void refresh();
  // The store changed: refresh now if the panel is on screen, else when it is next shown (the
  // measurement builds every run's model, which start-up need not wait for).
  void invalidate();
  int rows() const;
  bool exportCsv(const QString& path) const;

 protected:
  void showEvent(QShowEvent* e) override;

 private:
  QString workspace_;
  QTableWidget* table_;
  bool stale_ = true;
};

}  // namespace msconv::ui
