#include "msconv/eval/compare.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "msconv/nn/backbone.h"
#include "msconv/nn/complexity.h"
#include "msconv/train/trainer.h"

namespace fs = std::filesystem;

namespace msconv::eval {

bool comparedMetric(const std::string& key) {
  return (key.find("/accuracy") != std::string::npos && key.find("_std") == std::string::npos) ||
         key.find("/tar@far=") != std::string::npos;
}

RunSummary summariseRun(const store::RunStore& db, const store::RunRow& run,
                        const std::string& workspace) {
  RunSummary s;
  s.name = run.name, s.arch = run.arch, s.op = run.op, s.status = run.status;
  s.checkpoint = train::runCheckpoint(workspace, run.name);
  auto model = nn::makeBackbone(run.arch, run.op);
  const auto cx = nn::measureComplexity(*model, 112, 1);
  s.params_m = cx.params / 1e6;
  s.gmacs = cx.macs / 1e9;
  std::vector<double> speed;
  for (const auto& m : db.metrics(run.id)) {  // in step order: the last validation wins
    if (m.key == "samples_per_s") speed.push_back(m.value);
    if (m.key.rfind("val/", 0) == 0 && comparedMetric(m.key)) s.metrics[m.key.substr(4)] = m.value;
  }
  if (!speed.empty()) {
    std::nth_element(speed.begin(), speed.begin() + speed.size() / 2, speed.end());
    s.samples_per_s = speed[speed.size() / 2];
  }
  return s;
}

}  // namespace msconv::eval
