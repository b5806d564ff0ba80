// What a run brings to a comparison table like the paper's Tables 7-8: operator, parameters and
// MACs, the median logged training speed, and the last validation's accuracy and TAR@FAR per
// set. Shared by `msconv compare` and the workbench's Compare panel.
#pragma once

#include <map>
#include <string>

#include "msconv/store/run_store.h"

namespace msconv::eval {

struct RunSummary {
  std::string name, arch, op, status;
  std::string checkpoint;  // best.ckpt, else last.ckpt; empty when there is none yet
  double params_m = 0, gmacs = 0;
  double samples_per_s = -1;  // median of the logged values; -1 when none was logged
  // "SET/accuracy" and "SET/tar@far=1e-02" of the last validation (SET: the .bin's file name).
  std::map<std::string, double> metrics;
};

// One run of `db` (a store of `workspace`). Complexity comes from the run's architecture and
// operator at 112 x 112.
RunSummary summariseRun(const store::RunStore& db, const store::RunRow& run,
                        const std::string& workspace);

// Whether a metric key belongs in the comparison (accuracies and TAR@FAR, not stds or XNorm).
bool comparedMetric(const std::string& key);

}  // namespace msconv::eval
