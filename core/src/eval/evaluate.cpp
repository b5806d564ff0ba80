#include "msconv/eval/evaluate.h"

#include <torch/torch.h>

#include <filesystem>

#include "msconv/data/ijb.h"
#include "msconv/data/pairs.h"
#include "msconv/error.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/inference.h"
#include "msconv/workspace/training_checkpoint.h"
#include "msconv/workspace/workspace.h"

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

namespace {

// Each template pair's score in the set's order, from the templates evaluateIjb scored (the same
// dot product the ROC ranks).
void keepIjbPairs(const data::IjbSet& set, SetEvaluation& s) {
  const Templates& t = s.ijb.features;
  const int64_t n = static_cast<int64_t>(set.pairs.size());
  std::vector<int32_t> a(n), b(n);
  s.ijb_labels.resize(n);
  s.ijb_t1.resize(n);
  s.ijb_t2.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const auto& p = set.pairs[i];
    a[i] = static_cast<int32_t>(t.row(p.t1));
    b[i] = static_cast<int32_t>(t.row(p.t2));
    s.ijb_labels[i] = p.label != 0;
    s.ijb_t1[i] = p.t1;
    s.ijb_t2[i] = p.t2;
  }
  s.ijb_scores.resize(n);
  const auto f = t.features.contiguous();
  scorePairs(f.data_ptr<float>(), f.size(0), f.size(1), a.data(), b.data(), n, s.ijb_scores.data());
}

}  // namespace

std::string keptSetName(const std::string& set_path, const EvaluateOptions& o) {
  fs::path p = fs::path(set_path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  if (fs::is_directory(p))
    return p.filename().string() + (o.ijb_set.empty() ? "" : "-" + o.ijb_set);
  return p.stem().string();
}

std::string keptScoresKey(const std::string& checkpoint, const std::string& set_path,
                          const EvaluateOptions& o) {
  std::string options;
  if (fs::is_directory(set_path))
    options = "ijb_set=" + o.ijb_set + ",detector_score=" + std::to_string(o.ijb.detector_score) +
              ",normalise_images=" + std::to_string(o.ijb.normalise_images);
  return pairScoresKey(checkpoint, set_path, options);
}

CheckpointEvaluation evaluateCheckpoint(const std::string& ckpt, const EvaluateOptions& o) {
  CheckpointEvaluation out;
  out.checkpoint = ckpt;
  auto loaded = model::loadModel(ckpt);
  if (!o.training_graph) loaded.model = nn::inferenceCopy(loaded.model);
  out.arch = loaded.arch;
  out.op = loaded.op;
  std::vector<std::string> sets = o.sets;
  if (sets.empty()) sets = workspace::checkpointValidationSets(ckpt);
  if (sets.empty())
    throw Error(ckpt + ": no pair sets given and the checkpoint names no validation sets");
  for (const auto& p : sets) {
    SetEvaluation s;
    s.path = p;
    EvalProgress progress;
    if (o.progress)
      progress = [&o, &p](int64_t done, int64_t total) { return o.progress(p, done, total); };
    if (fs::is_directory(p)) {  // an IJB-B/C folder (meta/, loose_crop/ or images)
      s.is_ijb = true;
      const auto set = data::readIjb(p, o.ijb_set);
      s.ijb = evaluateIjb(*loaded.model, set, o.ijb, o.batch, progress);
      s.name = s.ijb.name;
      keepIjbPairs(set, s);
    } else {
      const auto set = data::readPairsBin(p);  // its errors name the file
      try {
        s.pairs = verifyPairs(*loaded.model, set, o.batch, nullptr, nullptr, progress);
      } catch (const Cancelled&) {
        throw;
      } catch (const Error& e) {  // a set too small for the folds, ...: which set
        throw Error(p + ": " + e.what());
      }
      s.name = fs::path(p).stem().string();
    }
    if (!o.workspace.empty()) {
      const std::string file =
          pairScoresFile(workspace::Workspace(o.workspace), ckpt, keptSetName(p, o));
      try {
        writePairScores(file, pairScoresOf(s, ckpt), keptScoresKey(ckpt, p, o));
        s.scores_file = file;
      } catch (const Error& e) {
        s.scores_error = e.what();
      }
    }
    out.sets.push_back(std::move(s));
  }
  return out;
}

PairScores keptPairScores(const std::string& ckpt, const std::string& set_path,
                          const EvaluateOptions& o, bool* computed, std::string* file) {
  std::string path;
  const std::string key = keptScoresKey(ckpt, set_path, o);
  if (!o.workspace.empty()) {
    path = pairScoresFile(workspace::Workspace(o.workspace), ckpt, keptSetName(set_path, o));
    if (file) *file = path;
    if (fs::exists(path)) {
      try {
        if (auto kept = readPairScores(path, key)) {
          if (computed) *computed = false;
          return std::move(*kept);
        }
      } catch (const Error&) {  // corrupt or cut short: evaluated again and replaced
      }
    }
  }
  EvaluateOptions one = o;
  one.sets = {set_path};
  auto ev = evaluateCheckpoint(ckpt, one);  // writes the kept file
  if (computed) *computed = true;
  if (file) *file = ev.sets.at(0).scores_file;  // "" when it could not be kept
  return pairScoresOf(ev.sets.at(0), ckpt);
}

}  // namespace msconv::eval
