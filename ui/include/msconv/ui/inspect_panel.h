// The Inspect panel: feature maps of an operator layer's branches (Fig. 6) of every checked model
// side by side (the same channels where the shapes allow) and Grad-CAM across models (Fig. 7) for
// one face, computed on the InspectQueue's engine thread and drawn as soon as a model and a face
// are there (the layer tree starts on the first operator layer; a panel on screen without a face
// takes the first face of the training set); both figures zoom and pan (FigureView), the value
// under the mouse is told (model, layer, channel, position, activation or CAM value) and a
// clicked tile opens enlarged; the arrays behind them exported as .npy; and the CAMs'
// faithfulness (deletion, insertion, ROAD, average drop / increase) over N pairs of a set,
// computed on demand off the GUI thread.
#pragma once

#include <QImage>
#include <QString>
#include <QWidget>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "msconv/ui/inspect_figure.h"

class QCheckBox;
class QDialog;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QSpinBox;
class QTableWidget;
class QTreeWidget;

namespace msconv::ui {

class FigureView;
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
  // The figures with the arrays behind their tiles, in their zoomable views.
  FigureView* featureView() const { return feature_view_; }
  FigureView* camView() const { return cam_view_; }
  // What the mouse is over ("" when over no tile): the label under the figures says it too, and
  // the main window's status bar.
  QString valueText() const;
  // One tile of a figure ("featuremaps" or "gradcam") enlarged in a window of its own, with the
  // value under the mouse; nullptr before the first.
  void enlargeTile(const QString& kind, int tile);
  QDialog* enlargedWindow() const { return enlarged_; }
  FigureView* enlargedView() const { return enlarged_view_; }
  void setChecked(const QString& run, bool checked);  // a model of the list, by run name
  InspectQueue* queue() const { return queue_; }
  // The arrays behind both figures for the current controls, in the background: DIR/gradcam/ and
  // DIR/featuremaps/, each .npy files plus index.json as `msconv gradcam|featuremaps
  // --save-arrays` writes them. `arraysExported` with the files, or `arraysFailed`.
  void exportArrays(const QString& dir);
  // Faithfulness of the checked models' CAMs (the current method, the last unit of each stage)
  // over `n` genuine pairs of `bin`, in the background; a new request supersedes (cancels) the
  // one in progress. `faithfulnessReady` when in, `faithfulnessFailed` with the message.
  void computeFaithfulness(const QString& bin, int n);
  void cancelFaithfulness();
  QTableWidget* faithfulnessTable() const { return faith_table_; }

 Q_SIGNALS:
  void updated(const QString& kind);
  void datasetListed();
  void arraysExported(const QStringList& files);
  void arraysFailed(const QString& message);
  void faithfulnessReady(int rows);
  void faithfulnessFailed(const QString& message);

 protected:
  void showEvent(class QShowEvent* e) override;
  void dragEnterEvent(class QDragEnterEvent* e) override;
  void dropEvent(class QDropEvent* e) override;

 private:
  void fillDataset();
  void pickFirstFace();  // a panel on screen with models but no face: the training set's first
  void showFigure(const InspectFigure& figure);
  void showValue(const QString& text);
  QStringList checkedModels() const;
  void startJob(std::function<void()> job);  // a background job, joined at destruction
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
  FigureView *feature_view_, *cam_view_;
  QLabel *message_, *value_, *feature_note_;
  QImage feature_, cam_;
  QDialog* enlarged_ = nullptr;
  FigureView* enlarged_view_ = nullptr;
  QLabel *enlarged_title_ = nullptr, *enlarged_value_ = nullptr;
  InspectQueue* queue_;
  QLineEdit* faith_set_;
  QSpinBox* faith_n_;
  QLabel* faith_status_;
  QTableWidget* faith_table_;
  // The faithfulness request in progress: its number; an older one sees a newer number and stops.
  std::shared_ptr<std::atomic<uint64_t>> faith_generation_;
  struct Job {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Job> jobs_;  // finished ones are joined when the next starts
};

}  // namespace msconv::ui
