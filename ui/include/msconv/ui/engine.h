// The workbench's bridge to the engine: plain values in and out (no LibTorch types), so panels
// stay free of LibTorch. Everything here may take seconds: call it off the GUI thread (the
// InspectQueue and the panels' worker threads do).
#pragma once

#include <QImage>
#include <QObject>
#include <QString>
#include <QStringList>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "msconv/eval/det.h"           // torch-free: DET points, histograms
#include "msconv/eval/pair_scores.h"   // torch-free: per-pair scores
#include "msconv/ui/inspect_figure.h"  // torch-free: figures with their tiles' values

namespace msconv::ui {

struct SetEvaluation {
  QString name, path;  // path: the .bin file or the IJB folder
  bool is_ijb = false;
  int64_t pairs = 0;
  double accuracy = 0, accuracy_std = 0, val = 0, xnorm = 0, auc = 0;
  std::vector<std::pair<double, double>> tar_at_far;
  std::vector<double> roc_far, roc_tar;  // thinned, log-spaced FARs
  // The DET curve (eval::computeDet on the exact ROC): FMR rising, and the EER with its threshold.
  std::vector<double> det_fmr, det_fnmr, det_threshold;
  double eer = 0, eer_threshold = 0;
  eval::ScoreHistogram histogram;  // genuine / impostor scores, the threshold at FAR 1e-3 marked
  // Each pair's score and label (kept in the workspace when one is given: `scores_file`).
  std::shared_ptr<const eval::PairScores> scores;
  QString scores_file;
};

// Evaluates a checkpoint on .bin pair sets and IJB folders (empty: the sets it was validated
// on). With a workspace, each set's per-pair scores are kept there (eval::pairScoresFile), so that
// the failure browser and DET curves need no second embedding pass. Throws msconv::Error with the
// message to show. `progress` (set path, images embedded, images in the set) is called after every
// batch from the calling thread; returning false stops the evaluation (msconv::Error thrown).
using SetProgress = std::function<bool(const QString& set, qint64 done, qint64 total)>;
std::vector<SetEvaluation> evaluateCheckpoint(const QString& checkpoint, const QStringList& bins,
                                              const QString& workspace = {},
                                              const SetProgress& progress = {});

// The EER of every set a workspace keeps scores of for a checkpoint: set name -> EER
// (eval::computeDet). Fast (no model is run).
std::map<QString, double> keptEers(const QString& workspace, const QString& checkpoint);

// One face of a set as an 8-bit picture, `size` pixels square: a .bin's image `index` (pair i's
// faces are 2i and 2i + 1), or an IJB folder's first face of template `index` (aligned as the
// evaluation aligns it). The set is read once and kept (the last few sets). Any thread. Throws
// msconv::Error naming the set and the image.
QImage setFace(const QString& set_path, bool is_ijb, int64_t index, int size = 112);

// Pair CAMs: each image of pair `pair` of a .bin set explained for the cosine similarity to the
// other image's embedding (inspect::pairCams), for every checkpoint, at `layers` (empty: the last
// unit of each stage). The figure: image A's grid (rows = models, columns = layers) beside image
// B's.
QImage pairCamFigure(const QStringList& checkpoints, const QString& bin, int64_t pair,
                     const QString& method, const QStringList& layers, const QString& colormap,
                     double alpha);

// CAM faithfulness (inspect::faithfulnessOnPairs) over `n` genuine pairs of a .bin set, for each
// (label, checkpoint), CAM method and layer (empty: the last unit of each stage). `cancelled` is
// asked between models and methods: when it says true the call throws Cancelled.
struct FaithfulnessRow {
  QString model, layer, method;
  int pairs = 0;
  double deletion_auc = 0, insertion_auc = 0, road_most = 0, road_least = 0, road_combined = 0,
         drop = 0, increase = 0;
};
struct Cancelled {};
std::vector<FaithfulnessRow> faithfulness(const std::vector<std::pair<QString, QString>>& models,
                                          const QString& bin, int n, const QStringList& methods,
                                          const QStringList& layers,
                                          const std::function<bool()>& cancelled = {});

// The arrays behind the Inspect panel's figures as float32 .npy files plus DIR/index.json (the
// layout of `msconv gradcam --save-arrays` and `msconv featuremaps --save-arrays`). Returns the
// files written (index.json last). Throws msconv::Error naming the file.
QStringList exportCamArrays(const QStringList& checkpoints, const QString& image,
                            const QString& method, const QString& target, const QString& reference,
                            const QString& dir);
QStringList exportFeatureMapArrays(const QString& checkpoint, const QString& image,
                                   const QString& layer, int top, const QString& dir);

struct CompareRow {
  QString name, op, status;
  double params_m = 0, gmacs = 0, samples_per_s = 0;
  std::map<QString, double> metrics;  // "val.bin/accuracy", "val.bin/tar@far=1e-02", ...
  QString validation;                 // which validation: "best.ckpt, step N" or "last, step N"
};
std::vector<CompareRow> compareRuns(const QString& workspace);
// A model file (a checkpoint or an ONNX file) as a Compare row, evaluated on the .bin sets `bins`:
// the columns and numbers of `msconv compare FILE --bin ...`. Throws msconv::Error naming the file.
CompareRow compareModelFile(const QString& path, const QStringList& bins);

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

// The Inspect panel's figures with the arrays behind every tile (InspectFigure).
// Feature maps of `layer` (empty: each model's first operator layer) for every checkpoint, side by
// side: the top `top` channels by energy of the first model that has the layer, the same channel
// indices in every model whose maps have the same shape (another shape: its own top channels, and
// the figure's note says so; a model without the layer: named in the note). Tiles hold the raw
// activations. `shared_scale`: one min-max per branch row across the models' shown channels.
InspectFigure featureMapsFigure(const QStringList& checkpoints, const QString& image,
                                const QString& layer, int top, const QString& colormap,
                                bool shared_scale);
// Grad-CAM as gradcamFigure draws it (the same picture), with each tile's CAM in [0, 1].
InspectFigure gradcamValuesFigure(const QStringList& checkpoints, const QString& image,
                                  const QString& method, const QString& target,
                                  const QString& reference, const QString& colormap, double alpha);

// One engine thread for interactive inspection. A request replaces a queued request of the same
// kind, so dragging a control never builds a backlog; results come back as `ready` (queued to the
// receiver's thread) or `failed`.
class InspectQueue : public QObject {
  Q_OBJECT
 public:
  explicit InspectQueue(QObject* parent = nullptr);
  ~InspectQueue() override;
  void submit(const QString& kind, std::function<QImage()> job);
  // A figure with its tiles' values: `figureReady` with it (and `ready` with its image).
  void submitFigure(const QString& kind, std::function<InspectFigure()> job);
  int superseded() const { return superseded_; }

 Q_SIGNALS:
  void ready(const QString& kind, const QImage& image);
  void figureReady(const QString& kind, const msconv::ui::InspectFigure& figure);
  void failed(const QString& kind, const QString& message);

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<QString, std::function<InspectFigure()>> pending_;
  bool quit_ = false;
  int superseded_ = 0;
  std::thread thread_;
};

}  // namespace msconv::ui
