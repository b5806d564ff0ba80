// The workbench's bridge to the engine: plain values in and out (no LibTorch types), so panels
// stay free of LibTorch. Everything here may take seconds: call it off the GUI thread (the
// InspectQueue and the panels' worker threads do).
#pragma once

#include <QImage>
#include <QObject>
#include <QString>
#include <QStringList>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace msconv::ui {

struct SetEvaluation {
  QString name;
  int64_t pairs = 0;
  double accuracy = 0, accuracy_std = 0, val = 0, xnorm = 0, auc = 0;
  std::vector<std::pair<double, double>> tar_at_far;
  std::vector<double> roc_far, roc_tar;  // thinned, log-spaced FARs
};

// Evaluates a checkpoint on .bin pair sets (empty: the sets it was validated on). Throws
// msconv::Error with the message to show.
std::vector<SetEvaluation> evaluateCheckpoint(const QString& checkpoint, const QStringList& bins);

struct CompareRow {
  QString name, op, status;
  double params_m = 0, gmacs = 0, samples_per_s = 0;
  std::map<QString, double> metrics;  // "val.bin/accuracy", "val.bin/tar@far=1e-02", ...
  QString validation;                 // which validation: "best.ckpt, step N" or "last, step N"
};
std::vector<CompareRow> compareRuns(const QString& workspace);

// A run's logged series from the store, for charting runs that trained earlier.
struct RunHistory {
  QString name;
  std::vector<int64_t> steps;                              // logged steps
  std::vector<double> wall;                                // unix seconds of each logged step
  std::vector<double> loss, lr, samples_per_s, grad_norm;  // per logged step
  struct Validation {
    int64_t step = 0;
    double wall = 0;
    std::map<QString, double> metrics;  // "val/<set>/accuracy", "val/<set>/tar@far=1e-03", ...
  };
  std::vector<Validation> validations;
};
std::vector<RunHistory> runHistories(const QString& workspace);

// A study's report (eval::studyReport's JSON document: the study's finished runs evaluated on
// their validation sets, statistics per cell across seeds, each cell against the reference). It
// evaluates every finished run that has no cached evaluation: seconds to minutes, so call it off
// the GUI thread. `study`: a name the workspace keeps (WS/studies/NAME.json) or a study file.
// `progress` (any thread): one line per run evaluated. Throws msconv::Error with the message.
QString studyReportJson(const QString& workspace, const QString& study,
                        const std::function<void(const QString&)>& progress = {});
// The report in a format: text, csv, json, markdown or latex (eval::formatStudyReport). Fast.
// Throws msconv::Error for another format or a document that is not a report.
QString formatStudyReport(const QString& json, const QString& format);

// The names of the workspace's runs in the store.
QStringList runNames(const QString& workspace);

// Checkpoints of the workspace's runs: (run name, best.ckpt or last.ckpt).
std::vector<std::pair<QString, QString>> runCheckpoints(const QString& workspace);

QStringList operatorLayers(const QString& checkpoint);
// The training set a checkpoint learned from ("" for a model-only checkpoint).
QString trainingSetOf(const QString& checkpoint);
// Face images of a training set (.rec or identity folders) to inspect: the first image of each
// identity, at most `max` of them, as (label, sample index).
std::vector<std::pair<QString, qint64>> datasetSamples(const QString& dataset, int max);
// Sample `index` of a training set as an image file (a folder set's own file; a .rec record is
// written to a temporary file). Throws msconv::Error naming the record.
QString datasetImageFile(const QString& dataset, qint64 index);
QImage featureMapFigure(const QString& checkpoint, const QString& image, const QString& layer,
                        int top, const QString& colormap, bool shared_scale);
// target: "norm", "cosine" (needs reference), "identity:N".
QImage gradcamFigure(const QStringList& checkpoints, const QString& image, const QString& method,
                     const QString& target, const QString& reference, const QString& colormap,
                     double alpha);

// One engine thread for interactive inspection. A request replaces a queued request of the same
// kind, so dragging a control never builds a backlog; results come back as `ready` (queued to the
// receiver's thread) or `failed`.
class InspectQueue : public QObject {
  Q_OBJECT
 public:
  explicit InspectQueue(QObject* parent = nullptr);
  ~InspectQueue() override;
  void submit(const QString& kind, std::function<QImage()> job);
  int superseded() const { return superseded_; }

 Q_SIGNALS:
  void ready(const QString& kind, const QImage& image);
  void failed(const QString& kind, const QString& message);

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<QString, std::function<QImage()>> pending_;
  bool quit_ = false;
  int superseded_ = 0;
  std::thread thread_;
};

}  // namespace msconv::ui
