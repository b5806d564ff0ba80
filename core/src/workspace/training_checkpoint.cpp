#include "msconv/workspace/training_checkpoint.h"

#include <torch/torch.h>

#include "msconv/error.h"
#include "msconv/workspace/workspace.h"

namespace msconv::workspace {
namespace {

// A data.train / data.val entry with "synthetic" resolved in the checkpoint's workspace.
std::string resolveSet(const std::string& ckpt, const config::SyntheticSettings& syn,
                       const std::string& v, const std::string& suffix) {
  if (v != "synthetic") return v;
  const auto ws = Workspace::ofCheckpoint(ckpt);
  if (!ws)
    throw Error(ckpt +
                ": trained on the workspace's synthetic set, but the checkpoint is not inside "
                "a workspace; name the data");
  return ws->syntheticSet(syn) + suffix;
}

std::optional<config::Config> configOf(torch::serialize::InputArchive& a, const std::string& path) {
  c10::IValue cfg;
  if (!a.try_read("config", cfg) || !cfg.isString()) return std::nullopt;
  return config::Config::fromJson(cfg.toStringRef(), path);
}

}  // namespace

void writeTrainingCheckpoint(const std::string& path, nn::BackboneImpl& model,
                             torch::serialize::OutputArchive& head,
                             torch::serialize::OutputArchive& optimizer, const TrainingState& s) {
  torch::serialize::OutputArchive a;
  model::writeModelEntries(a, model);
  a.write("config", c10::IValue(s.config.toJson()));
  a.write("step", c10::IValue(s.step));
  a.write("best", c10::IValue(s.best));
  a.write("head", head);
  a.write("optimizer", optimizer);
  a.write("rng", s.rng, /*is_buffer=*/true);
  if (s.has_scaler) {
    a.write("scaler_scale", c10::IValue(s.scaler_scale));
    a.write("scaler_clean", c10::IValue(s.scaler_clean));
  }
  model::saveArchiveAtomically(a, path);
}

TrainingCheckpoint::TrainingCheckpoint(std::string path) : path_(std::move(path)) {
  model::openCheckpoint(path_, archive_);
  auto cfg = configOf(archive_, path_);
  if (!cfg)
    throw Error(path_ + ": a model checkpoint without training state; cannot resume from it");
  state_.config = std::move(*cfg);
  auto need = [&](const char* key, c10::IValue& v) {
    if (!archive_.try_read(key, v))
      throw Error(path_ + ": training checkpoint has no '" + std::string(key) + "' entry");
  };
  c10::IValue step, best;
  need("step", step);
  need("best", best);
  if (!step.isInt() || !best.isDouble())
    throw Error(path_ + ": training checkpoint entries 'step' and 'best' are not numbers");
  state_.step = step.toInt();
  state_.best = best.toDouble();
  c10::IValue scale, clean;
  if (archive_.try_read("scaler_scale", scale) && archive_.try_read("scaler_clean", clean)) {
    state_.has_scaler = true;
    state_.scaler_scale = scale.toDouble();
    state_.scaler_clean = clean.toInt();
  }
  for (auto [key, sub] : {std::pair<const char*, torch::serialize::InputArchive*>{"model", &model_},
                          {"head", &head_},
                          {"optimizer", &optimizer_}})
    if (!archive_.try_read(key, *sub))
      throw Error(path_ + ": training checkpoint has no '" + std::string(key) + "' entry");
  if (!archive_.try_read("rng", state_.rng, /*is_buffer=*/true))
    throw Error(path_ + ": training checkpoint has no 'rng' entry");
}

model::ModelDescription TrainingCheckpoint::model() {
  return model::describeModel(archive_, path_);
}

std::optional<config::Config> trainingConfig(const std::string& ckpt) {
  torch::serialize::InputArchive a;
  model::openCheckpoint(ckpt, a);
  return configOf(a, ckpt);
}

at::Tensor readHead(const std::string& ckpt) {
  torch::serialize::InputArchive a, h;
  model::openCheckpoint(ckpt, a);
  if (!a.try_read("head", h))
    throw Error(ckpt +
                ": a model checkpoint without its training head; identity targets need "
                "a training checkpoint (step-N.ckpt, last.ckpt, best.ckpt)");
  torch::Tensor w;
  if (!h.try_read("weight", w)) throw Error(ckpt + ": the checkpoint's head has no 'weight'");
  return w;
}

std::vector<std::string> checkpointValidationSets(const std::string& ckpt) {
  std::vector<std::string> out;
  const auto c = trainingConfig(ckpt);
  if (!c) return out;
  const auto s = c->settings();
  for (const auto& v : s.data.val) out.push_back(resolveSet(ckpt, s.data.synthetic, v, "/val.bin"));
  return out;
}

std::string checkpointTrainingSet(const std::string& ckpt) {
  const auto c = trainingConfig(ckpt);
  if (!c) return {};
  const auto s = c->settings();
  return resolveSet(ckpt, s.data.synthetic, s.data.train, "");
}

}  // namespace msconv::workspace
