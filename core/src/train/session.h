// One training run in stages: prepare (configuration, data, model, head, optimizer, restored
// state, the run's row and folder), step (one optimizer step over `accum` batches), validate,
// checkpoint and finish. Trainer::run is a loop over these; a multi-process launcher drives the
// same stages. Internal to the train module.
#pragma once

#include <torch/torch.h>

#include <opencv2/core/mat.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "msconv/config/config.h"
#include "msconv/data/loader.h"
#include "msconv/data/pairs.h"
#include "msconv/nn/backbone.h"
#include "msconv/store/run_store.h"
#include "msconv/train/grad_scaler.h"
#include "msconv/train/margin.h"
#include "msconv/train/telemetry_probe.h"
#include "msconv/train/trainer.h"
#include "msconv/workspace/workspace.h"
#include "train/grad_sync.h"

namespace msconv::workspace {
class TrainingCheckpoint;
}

namespace msconv::train {

class Session {
 public:
  Session(config::Config config, workspace::Workspace ws, std::string name,
          std::shared_ptr<Collective> group, std::function<void(const TrainEvent&)> emit,
          std::function<bool()> stop_requested = {});
  ~Session();

  // Everything before the first step. `resume`: a run name or a checkpoint file ("" for a new
  // run). Throws msconv::Error naming the key, file or run.
  void prepare(const std::string& resume);
  bool finished() const { return step_ >= total_; }
  int64_t stepCount() const { return step_; }
  // One optimizer step. Throws msconv::Error for a non-finite loss.
  void step();
  bool validationDue() const { return step_ % val_every_ == 0 || step_ == total_; }
  bool checkpointDue() const { return step_ % ckpt_every_ == 0 || step_ == total_; }
  void validate();
  void checkpoint();
  // A stop (pause) on any rank stops (pauses) every rank at the same step: what some rank asked.
  struct Agreed {
    bool stop = false, pause = false;
  };
  Agreed agree(bool stop, bool pause);
  // The end: status in the store, the final checkpoint of a stopped run, the done event.
  TrainResult finish(store::RunStatus status);
  // Whether prepare() got as far as the run's row and folder.
  bool hasRun() const { return !dir_.empty(); }
  // A failure once the run exists: marked failed, the error recorded in train.log. Never throws.
  void fail(const std::string& message) noexcept;

 private:
  void resolveResume(const std::string& resume);
  void agreeOnConfiguration();
  void checkDevice();
  void openData();
  void buildModel();
  void restore();
  void openRun();
  void openTelemetry();
  void saveTraining(const std::string& path);
  void logStep(int64_t epoch, double lr);
  void clipGradients();

  config::Config config_;
  config::RunSettings s_;
  workspace::Workspace ws_;
  std::string name_;
  std::shared_ptr<Collective> group_;
  Collective& g_;
  std::function<void(const TrainEvent&)> emit_;
  std::function<bool()> stop_requested_;  // a stop asked for while the data is prepared
  bool rank0_;
  torch::Device device_{torch::kCPU};

  std::unique_ptr<store::RunStore> db_;  // rank 0 only
  std::optional<store::RunRow> resumed_row_;
  std::unique_ptr<workspace::TrainingCheckpoint> resumed_;

  std::shared_ptr<const data::FaceDataset> dataset_;
  std::vector<data::PairSet> val_sets_;
  std::vector<std::vector<cv::Mat>> val_decoded_;  // rank 0: each set decoded at its first use
  std::unique_ptr<data::DataLoader> loader_;
  int64_t steps_per_epoch_ = 0, total_ = 0, val_every_ = 1, ckpt_every_ = 1, epoch_ = -1;

  nn::Backbone model_;
  MarginHead head_{nullptr};
  std::unique_ptr<torch::optim::SGD> opt_;
  std::vector<torch::Tensor> params_, backbone_params_;
  std::unique_ptr<GradScaler> scaler_;
  std::unique_ptr<GradientSync> grad_sync_;  // several ranks: backbone gradients summed
  int64_t step_ = 0, checkpointed_step_ = -1;
  double best_ = -1, grad_norm_ = 0;

  store::RunRow run_;
  std::string dir_, last_path_, best_path_;
  std::ofstream log_;              // stays closed (writes nothing) on ranks other than 0
  void checkLog();                 // throws msconv::Error naming train.log once a write failed
  std::vector<std::string> kept_;  // step checkpoints, oldest first
  std::unique_ptr<TelemetryProbe> probe_;
  std::unique_ptr<telemetry::Writer> telemetry_;
  TrainResult result_;

  using Clock = std::chrono::steady_clock;
  Clock::time_point t0_, window_start_;
  int64_t first_step_ = 0, window_samples_ = 0, window_steps_ = 0;
  double window_loss_ = 0;
};

}  // namespace msconv::train
