// Evaluating a checkpoint: the use-case `msconv eval`, `msconv compare --bin` and the workbench's
// Evaluation panel share, and the metric names a verification result is stored and shown under.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "msconv/eval/ijb.h"
#include "msconv/eval/metric_name.h"
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
};

struct SetEvaluation {
  std::string name, path;  // name: the file's stem or the IJB set's name
  bool is_ijb = false;
  VerificationResult pairs;  // a .bin's 10-fold verification
  IjbResult ijb;             // an IJB folder's 1:1 protocol
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
CheckpointEvaluation evaluateCheckpoint(const std::string& checkpoint, const EvaluateOptions& o);

}  // namespace msconv::eval
