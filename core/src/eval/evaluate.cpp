#include "msconv/eval/evaluate.h"

#include <torch/torch.h>

#include <filesystem>

#include "msconv/data/ijb.h"
#include "msconv/data/pairs.h"
#include "msconv/error.h"
#include "msconv/model/checkpoint.h"
#include "msconv/workspace/training_checkpoint.h"

namespace fs = std::filesystem;

namespace msconv::eval {

std::vector<std::pair<MetricName, double>> verificationMetrics(const std::string& set,
                                                               const VerificationResult& r) {
  std::vector<std::pair<MetricName, double>> out = {
      {MetricName::accuracy(set), r.accuracy},
      {{set, MetricName::Kind::kAccuracyStd, 0}, r.accuracy_std},
      {{set, MetricName::Kind::kXNorm, 0}, r.xnorm}};
  for (const auto& [far, tar] : r.tar_at_far) out.push_back({MetricName::tarAtFar(set, far), tar});
  if (!r.roc.points.empty()) out.push_back({{set, MetricName::Kind::kAuc, 0}, r.roc.auc});
  return out;
}

CheckpointEvaluation evaluateCheckpoint(const std::string& ckpt, const EvaluateOptions& o) {
  CheckpointEvaluation out;
  out.checkpoint = ckpt;
  auto loaded = model::loadModel(ckpt);
  out.arch = loaded.arch;
  out.op = loaded.op;
  std::vector<std::string> sets = o.sets;
  if (sets.empty()) sets = workspace::checkpointValidationSets(ckpt);
  if (sets.empty())
    throw Error(ckpt + ": no pair sets given and the checkpoint names no validation sets");
  for (const auto& p : sets) {
    SetEvaluation s;
    s.path = p;
    if (fs::is_directory(p)) {  // an IJB-B/C folder (meta/, loose_crop/ or images)
      s.is_ijb = true;
      s.ijb = evaluateIjb(*loaded.model, data::readIjb(p, o.ijb_set), o.ijb, o.batch);
      s.name = s.ijb.name;
    } else {
      s.pairs = verifyPairs(*loaded.model, data::readPairsBin(p), o.batch);
      s.name = fs::path(p).stem().string();
    }
    out.sets.push_back(std::move(s));
  }
  return out;
}

}  // namespace msconv::eval
