// Evaluating a checkpoint: the use-case `msconv eval`, `msconv compare --bin` and the workbench's
// Evaluation panel share, and the metric names a verification result is stored and shown under.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "msconv/eval/ijb.h"
#include "msconv/eval/metric_name.h"
#include "msconv/eval/pair_scores.h"
#include "msconv/eval/verification.h"

namespace msconv::eval {

// The named metrics of a verification of the pair set `set` (its file name, "lfw.bin"):
// accuracy, its std, XNorm and TAR at each supported FAR. Validation stores these and
// comparisons show them.
std::vector<std::pair<MetricName, double>> verificationMetrics(const std::string& set,
                                                               const VerificationResult& r);

struct EvaluateOptions {
  // Pair sets (.bin) and IJB-B/C folders; empty: the sets the checkpoint was validated on.
  std::vector<std::string> sets;
  std::string ijb_set;  // ijbc or ijbb for IJB folders ("": the one under meta/)
  TemplateOptions ijb;
  int batch = 64;
  // A workspace root: each set's per-pair scores are kept there after evaluating
  // (pairScoresFile, keyed by pairScoresKey). "": kept nowhere.
  std::string workspace;
  // Called with each set's images embedded after every batch (the set's path as given, images
  // done, images in it); false stops the evaluation (eval::Cancelled).
  std::function<bool(const std::string& set, int64_t done, int64_t total)> progress;
  // Embed with the model as trained (eval mode) instead of its inference form
  // (nn::inferenceCopy: BatchNorm folded, channels-last, no autograd bookkeeping).
  bool training_graph = false;
};

// The file name a set's kept scores go under: a .bin's stem; an IJB folder's name (and -SET
// when o.ijb_set names one).
std::string keptSetName(const std::string& set_path, const EvaluateOptions& o);
// The key of a checkpoint's kept scores on a set under these options (pairScoresKey with the
// IJB template options).
std::string keptScoresKey(const std::string& checkpoint, const std::string& set_path,
                          const EvaluateOptions& o);

struct SetEvaluation {
  std::string name, path;  // name: the file's stem or the IJB set's name
  bool is_ijb = false;
  VerificationResult pairs;  // a .bin's 10-fold verification
  IjbResult ijb;             // an IJB folder's 1:1 protocol
  // IJB: each template pair's cosine score (as the ROC ranks it), label and templates, in the
  // set's order.
  std::vector<float> ijb_scores;
  std::vector<uint8_t> ijb_labels;
  std::vector<int64_t> ijb_t1, ijb_t2;
  // With EvaluateOptions::workspace: the file the per-pair scores were kept in, or why they
  // could not be (a failed write does not fail the evaluation).
  std::string scores_file, scores_error;
  const Roc& roc() const { return is_ijb ? ijb.roc : pairs.roc; }
  const std::vector<std::pair<double, double>>& tarAtFar() const {
    return is_ijb ? ijb.roc.tar_at_far : pairs.tar_at_far;
  }
};

struct CheckpointEvaluation {
  std::string checkpoint, arch, op;
  std::vector<SetEvaluation> sets;
};

// Loads `checkpoint` and evaluates it on each set. Throws msconv::Error naming the checkpoint
// when no set is given and it names no validation sets, and naming the file of a bad set.
// With o.workspace, each set's per-pair scores are written there (a failed write is reported in
// SetEvaluation::scores_error, naming the file).
CheckpointEvaluation evaluateCheckpoint(const std::string& checkpoint, const EvaluateOptions& o);

// A checkpoint's per-pair scores on one set (a .bin or an IJB folder): read from o.workspace's
// kept file when its key matches (the checkpoint, the set and the options unchanged), else
// evaluated and kept there (o.sets is ignored). *computed says which; *file, where they are kept.
// A kept file that cannot be read (corrupt, cut short) is evaluated again and replaced.
PairScores keptPairScores(const std::string& checkpoint, const std::string& set_path,
                          const EvaluateOptions& o, bool* computed = nullptr,
                          std::string* file = nullptr);

}  // namespace msconv::eval
