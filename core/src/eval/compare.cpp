#include "msconv/eval/compare.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "msconv/data/pairs.h"
#include "msconv/error.h"
#include "msconv/eval/evaluate.h"
#include "msconv/eval/metric_name.h"
#include "msconv/eval/verification.h"
#include "msconv/model/onnx_model.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/complexity.h"
#include "msconv/nn/inference.h"
#include "msconv/workspace/workspace.h"

namespace msconv::eval {

ModelCost modelCost(nn::BackboneImpl& model) {
  ModelCost c;
  if (const auto* onnx = dynamic_cast<const model::OnnxBackboneImpl*>(&model)) {
    c.arch = c.op = "onnx";
    c.params_m = static_cast<double>(onnx->parameterCount()) / 1e6;
    c.gmacs = std::nan("");
    return c;
  }
  c.arch = model.arch().name;
  c.op = model.op().str();
  const auto cx = nn::measureComplexity(model, 112, 1);
  c.params_m = cx.params / 1e6;
  c.gmacs = cx.macs / 1e9;
  return c;
}

std::map<std::string, double> pairSetMetrics(nn::BackboneImpl& model,
                                             const std::vector<std::string>& bins, int batch,
                                             bool training_graph) {
  std::map<std::string, double> out;
  if (bins.empty()) return out;
  nn::Backbone shared = std::dynamic_pointer_cast<nn::BackboneImpl>(model.shared_from_this());
  if (!training_graph) shared = nn::inferenceCopy(shared);
  for (const auto& path : bins) {
    const auto r = verifyPairs(*shared, data::readPairsBin(path), batch);
    for (const auto& [name, v] :
         verificationMetrics(std::filesystem::path(path).filename().string(), r))
      if (name.compared()) out[name.label()] = v;
  }
  return out;
}

RunSummary summariseRun(const store::RunStore& db, const store::RunRow& run,
                        const workspace::Workspace& ws) {
  RunSummary s;
  s.name = run.name, s.arch = run.arch, s.op = run.op, s.status = run.status;
  s.checkpoint = ws.runCheckpoint(run.name);
  auto model = nn::makeBackbone(run.arch, run.op);
  const auto cx = nn::measureComplexity(*model, 112, 1);
  s.params_m = cx.params / 1e6;
  s.gmacs = cx.macs / 1e9;
  for (const auto& a : db.artifacts(run.id))
    if (a.kind == "best") s.metrics_step = a.step, s.metrics_of_best = true;
  const auto all = db.metrics(run.id);
  if (!s.metrics_of_best)  // the last validation
    for (const auto& m : all)
      if (m.key.rfind("val/", 0) == 0) s.metrics_step = std::max(s.metrics_step, m.step);
  std::vector<double> speed;
  for (const auto& m : all) {
    if (m.key == "samples_per_s") speed.push_back(m.value);
    if (m.key.rfind("val/", 0) != 0 || m.step != s.metrics_step) continue;
    const auto name = MetricName::parse(m.key);
    if (name && name->compared()) s.metrics[name->label()] = m.value;
  }
  if (!speed.empty()) {
    std::nth_element(speed.begin(), speed.begin() + speed.size() / 2, speed.end());
    s.samples_per_s = speed[speed.size() / 2];
  }
  return s;
}

std::vector<RunSummary> summariseRuns(const workspace::Workspace& ws) {
  std::vector<RunSummary> out;
  const auto db = ws.openStore();
  for (const auto& r : db->runs()) {
    try {
      out.push_back(summariseRun(*db, r, ws));
    } catch (const Error& e) {  // an architecture this build does not know: names only
      RunSummary s;
      s.name = r.name, s.arch = r.arch, s.op = r.op, s.status = r.status, s.error = e.what();
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace msconv::eval
