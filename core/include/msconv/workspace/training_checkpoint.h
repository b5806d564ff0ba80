// The training checkpoint (step-N.ckpt, last.ckpt, best.ckpt): an MSConv Lab model checkpoint
// (model::writeModelEntries) plus the state that resumes a run exactly. This is its one reader
// and writer: entries "config" (JSON), "step", "best", "head", "optimizer", "rng" and, with
// mixed precision, "scaler_scale" / "scaler_clean".
#pragma once

#include <torch/serialize/archive.h>

#include <cstdint>
#include <optional>
#include <string>

#include "msconv/config/config.h"
#include "msconv/model/checkpoint.h"

namespace msconv::workspace {

struct TrainingState {
  config::Config config;
  int64_t step = 0;
  double best = -1;  // best mean validation accuracy so far (-1: none yet)
  bool has_scaler = false;
  double scaler_scale = 0;
  int64_t scaler_clean = 0;
  at::Tensor rng;  // the CPU generator's state
};

// Writes a training checkpoint atomically. `head` and `optimizer` hold what the margin head and
// the optimizer saved of themselves.
void writeTrainingCheckpoint(const std::string& path, nn::BackboneImpl& model,
                             torch::serialize::OutputArchive& head,
                             torch::serialize::OutputArchive& optimizer,
                             const TrainingState& state);

// An open training checkpoint, read once. Throws msconv::Error naming the file for a file that
// is not an MSConv Lab checkpoint, and for a model-only checkpoint ("cannot resume from it").
class TrainingCheckpoint {
 public:
  explicit TrainingCheckpoint(std::string path);
  const std::string& path() const { return path_; }
  const TrainingState& state() const { return state_; }
  model::ModelDescription model();
  // The saved weights of the backbone, margin head and optimizer, to load into their objects.
  torch::serialize::InputArchive& modelWeights() { return model_; }
  torch::serialize::InputArchive& head() { return head_; }
  torch::serialize::InputArchive& optimizer() { return optimizer_; }

 private:
  std::string path_;
  torch::serialize::InputArchive archive_, model_, head_, optimizer_;
  TrainingState state_;
};

// The configuration a checkpoint was trained with; nullopt for a model-only checkpoint.
std::optional<config::Config> trainingConfig(const std::string& checkpoint);

// The margin head's class centres (classes x embedding) a checkpoint holds: a training
// checkpoint's head, or the head an imported checkpoint kept. Throws msconv::Error naming the
// file when it has none.
at::Tensor readHead(const std::string& checkpoint);

// The pair sets a checkpoint was validated on (its data.val, "synthetic" resolved in the
// checkpoint's workspace) and the set it was trained on; empty for a model-only checkpoint.
// Throws msconv::Error naming the checkpoint when "synthetic" cannot be resolved.
std::vector<std::string> checkpointValidationSets(const std::string& checkpoint);
std::string checkpointTrainingSet(const std::string& checkpoint);

}  // namespace msconv::workspace
