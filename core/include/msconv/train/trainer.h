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

#include "msconv/config/config.h"
#include "msconv/store/run_store.h"
#include "msconv/train/collective.h"

namespace msconv::train {

using config::Config;

struct TrainEvent {
  // kPrepare: before the first step, long preparation (generating the synthetic training set):
  // step = done, total_steps = its total, message = what is prepared.
  enum class Kind { kPrepare, kStart, kStep, kValidation, kCheckpoint, kDone };
  Kind kind = Kind::kStep;
  int64_t step = 0, total_steps = 0, epoch = 0;
  double loss = 0, lr = 0, samples_per_s = 0, grad_norm = 0, eta_s = 0;
  std::map<std::string, double> metrics;  // validation: "<set>/accuracy", "<set>/xnorm", ...
  std::string message;                    // checkpoint path, run name, ...
};

using TrainObserver = std::function<void(const TrainEvent&)>;

struct TrainResult {
  std::string run_name, run_dir, final_checkpoint;
  store::RunStatus status = store::RunStatus::kDone;  // done or stopped
  int64_t steps = 0;                                  // the step the run is at (its checkpoint's)
  int64_t total_steps = 0;                            // the step it ends at
  int64_t steps_run = 0;  // steps this call trained: 0 for a run that was already finished
  // The loss the run store last logged for the run (what `msconv runs list` shows): the mean over
  // the last logging window, also for a run that was already finished.
  double last_loss = 0;
  std::vector<double> losses;  // every step's loss, in order (this process's steps)
  std::map<std::string, double> last_validation;
};

class Trainer {
 public:
  // `workspace`: see workspace::Workspace ("": the default). With a `group`
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

// Learning rate at `step` of `total` for the configured schedule.
double learningRate(const config::RunSettings::Train& t, int64_t step, int64_t total,
                    int64_t steps_per_epoch);
inline double learningRate(const config::Config& c, int64_t step, int64_t total,
                           int64_t steps_per_epoch) {
  return learningRate(c.settings().train, step, total, steps_per_epoch);
}

}  // namespace msconv::train
