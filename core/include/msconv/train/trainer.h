// The training engine behind `msconv train` and the workbench's launch panel: margin-softmax
// training with SGD, the paper's schedule, clipping and accumulation; validation on pair sets;
// atomic checkpoints that resume exactly; events to observers; a SQLite run store.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "msconv/train/collective.h"
#include "msconv/train/config.h"

namespace msconv::train {

struct TrainEvent {
  enum class Kind { kStart, kStep, kValidation, kCheckpoint, kDone };
  Kind kind = Kind::kStep;
  int64_t step = 0, total_steps = 0, epoch = 0;
  double loss = 0, lr = 0, samples_per_s = 0, grad_norm = 0, eta_s = 0;
  std::map<std::string, double> metrics;  // validation: "<set>/accuracy", "<set>/xnorm", ...
  std::string message;                    // checkpoint path, run name, ...
};

using TrainObserver = std::function<void(const TrainEvent&)>;

struct TrainResult {
  std::string run_name, run_dir, final_checkpoint, status;  // status: done, stopped
  int64_t steps = 0;
  double last_loss = 0;
  std::vector<double> losses;  // every step's loss, in order (this process's steps)
  std::map<std::string, double> last_validation;
};

class Trainer {
 public:
  // `workspace` holds runs.sqlite and one folder per run (WORKSPACE/runs/NAME). With a `group`
  // of several ranks (one Trainer per rank, each calling run()), every rank trains on its share
  // of each batch and holds its shard of the head's classes; gradients are summed across ranks;
  // only rank 0 writes checkpoints (the head gathered whole), the log and the store.
  Trainer(Config config, std::string workspace, std::string name = {},
          std::shared_ptr<Collective> group = nullptr);
  void addObserver(TrainObserver observer) { observers_.push_back(std::move(observer)); }
  // Trains from scratch, or continues `resume` (a run name in the workspace or a checkpoint
  // file) exactly where it stopped. Throws msconv::Error for bad input and for a NaN or Inf loss
  // (the run is marked failed; its last good checkpoint stays).
  TrainResult run(const std::string& resume = {});

  // Thread-safe controls for a GUI or a signal handler.
  void requestStop() { stop_ = true; }
  void setPaused(bool paused) { paused_ = paused; }
  bool paused() const { return paused_; }

 private:
  void emit(const TrainEvent& e);
  Config config_;
  std::string workspace_, name_;
  std::vector<TrainObserver> observers_;
  std::shared_ptr<Collective> group_;
  std::atomic<bool> stop_{false}, paused_{false};
};

// The synthetic set a configuration names ("synthetic" in data.train / data.val), generated in
// WORKSPACE/datasets on first use (keyed by its size and seed) and reused afterwards.
std::string syntheticSet(const Config& c, const std::string& workspace);

// A run's folder in a workspace: WORKSPACE/runs/NAME.
std::string runDir(const std::string& workspace, const std::string& run);
// A run's checkpoint to evaluate or inspect: best.ckpt, else last.ckpt, else "".
std::string runCheckpoint(const std::string& workspace, const std::string& run);
// The error a failed run stopped on, as its train.log recorded it ("" when there is none).
std::string runError(const std::string& workspace, const std::string& run);

// The workspace a checkpoint of WORKSPACE/runs/NAME/ belongs to, or "" for a loose file.
std::string workspaceOfCheckpoint(const std::string& checkpoint);

// The pair sets a training checkpoint was validated on (its data.val, "synthetic" resolved in its
// workspace); empty for a model-only checkpoint. Throws msconv::Error naming the checkpoint when
// "synthetic" cannot be resolved.
std::vector<std::string> checkpointValidationSets(const std::string& checkpoint);
// The training set a checkpoint was trained on (its data.train, resolved likewise); "" for a
// model-only checkpoint.
std::string checkpointTrainingSet(const std::string& checkpoint);

// Learning rate at `step` of `total` for the configured schedule.
double learningRate(const Config& c, int64_t step, int64_t total, int64_t steps_per_epoch);

}  // namespace msconv::train
