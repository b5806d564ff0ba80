// Live training curves (QCustomPlot): loss, learning rate, samples/s and validation accuracy over
// steps, several runs overlaid by colour; each series drawn faint raw with its debiased
// exponential average (smoothing slider, 0.6 by default) on top. Points are appended as events
// arrive and the plots are replotted at most ~30 times a second.
#pragma once

#include <QMap>
#include <QString>
#include <QTimer>
#include <QWidget>

#include "msconv/ui/smoothing.h"

#include <map>
#include <vector>

class QCustomPlot;
class QCPGraph;
class QSlider;
class QLabel;

namespace msconv::ui {

class TrainingPanel : public QWidget {
  Q_OBJECT
 public:
  explicit TrainingPanel(QWidget* parent = nullptr);
  // Raw points of a run's series ("loss", "lr", "samples_per_s", "accuracy"); for tests.
  int pointCount(const QString& run, const QString& series) const;
  double smoothing() const { return weight_; }
  void setSmoothing(double weight);
  bool exportPng(const QString& path, int width, int height);
  bool exportPdf(const QString& path);
  void setLogY(bool on);  // logarithmic value axes (loss, learning rate, samples/s)
  bool exportCsv(const QString& path) const;

 public Q_SLOTS:
  void addStep(const QString& run, qint64 step, double loss, double lr, double samples_per_s);
  void addValidation(const QString& run, qint64 step, const QMap<QString, double>& metrics);

 private:
  struct Series {
    std::vector<double> x, y;
    QCPGraph* raw = nullptr;
    QCPGraph* smooth = nullptr;
    Smoother smoother;
  };
  Series& series(const QString& run, int plot);
  void append(const QString& run, int plot, double x, double y);
  void rebuildSmoothed();
  void replotIfDirty();

  std::vector<QCustomPlot*> plots_;  // loss, lr, samples/s, accuracy
  std::map<std::pair<QString, int>, Series> series_;
  std::map<QString, int> colour_index_;
  QSlider* slider_ = nullptr;
  QLabel* slider_label_ = nullptr;
  QTimer replot_;
  bool dirty_ = false;
  double weight_ = 0.6;
};

}  // namespace msconv::ui
