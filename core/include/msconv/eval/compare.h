// What a run brings to a comparison table like the paper's Tables 7-8: operator, parameters and
// MACs, the median logged training speed, and the accuracy and TAR@FAR per set of the validation
// that wrote the run's best checkpoint: the numbers `msconv eval` gives for that checkpoint. Shared
// by `msconv compare` and the workbench's Compare panel.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "msconv/nn/backbone.h"
#include "msconv/store/run_store.h"
#include "msconv/workspace/workspace.h"

namespace msconv::eval {

struct RunSummary {
  std::string name, arch, op;
  store::RunStatus status = store::RunStatus::kRunning;
  std::string checkpoint;  // best.ckpt, else last.ckpt; empty when there is none yet
  // The validation `metrics` come from: the one that wrote best.ckpt (what `msconv eval` of the
  // run evaluates), else, for a run with no best checkpoint recorded, the last one. -1: none.
  int64_t metrics_step = -1;
  bool metrics_of_best = false;
  double params_m = 0, gmacs = 0;
  double samples_per_s = -1;  // median of the logged values; -1 when none was logged
  // compared metrics (eval::MetricName::compared) of one validation, by MetricName::label().
  std::map<std::string, double> metrics;
  std::string error;  // why the model could not be measured (summariseRuns only)
};

// One run of `db` (the store of `ws`). Complexity comes from the run's architecture and
// operator at 112 x 112. Throws msconv::Error for an architecture this build does not know.
// A model as a comparison row shows it: its family and operator ("onnx" for an ONNX file), its
// parameters (an ONNX file's: every float of its initialisers) and MACs (NaN where not
// measured: an ONNX file's).
struct ModelCost {
  std::string arch, op;
  double params_m = 0, gmacs = 0;
};
ModelCost modelCost(nn::BackboneImpl& model);

// The compared metrics (MetricName::compared, by label) of a model on each .bin pair set: the
// columns `msconv compare --bin` and the Compare panel's added models show. Embedded by the
// model's inference form (nn::inferenceCopy) unless training_graph.
std::map<std::string, double> pairSetMetrics(nn::BackboneImpl& model,
                                             const std::vector<std::string>& bins, int batch = 64,
                                             bool training_graph = false);

RunSummary summariseRun(const store::RunStore& db, const store::RunRow& run,
                        const workspace::Workspace& ws);
// Every run of the workspace's store, in order; a run that cannot be measured comes back with
// its names and `error`.
std::vector<RunSummary> summariseRuns(const workspace::Workspace& ws);

}  // namespace msconv::eval
