// The Inspect panel: feature maps of an operator layer's branches (Fig. 6) and Grad-CAM across
// models (Fig. 7) for one face, computed on the InspectQueue's engine thread.
#pragma once

#include <QImage>
#include <QString>
#include <QWidget>

#include <thread>
#include <utility>
#include <vector>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QSpinBox;
class QTreeWidget;

namespace msconv::ui {

class InspectQueue;

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

}  // namespace msconv::ui
