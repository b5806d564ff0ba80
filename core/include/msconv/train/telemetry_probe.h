// Collects the per-layer telemetry msconv-scope shows (msconv/telemetry/telemetry.h) from a
// training step: activation statistics of every unit from a tap on the step's forward, gradient
// norms per unit after its backward, and histograms of the gates of MSConv, SKConv and SCConv
// layers. Cheap by construction: it only reads tensors the step computes anyway, every N steps.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "msconv/nn/tap.h"
#include "msconv/telemetry/telemetry.h"

namespace torch::nn {
class Module;
}
namespace msconv::nn {
class BackboneImpl;
}

namespace msconv::train {

class TelemetryProbe {
 public:
  // `head` (may be null) adds a "head" gradient group.
  TelemetryProbe(nn::BackboneImpl& model, torch::nn::Module* head, int every, int bins = 16);
  const telemetry::Header& header() const { return header_; }
  // Whether the step about to run (0-based index `step`) is sampled.
  bool due(int64_t step) const { return every_ > 0 && (step + 1) % every_ == 0; }
  // The tap to pass to the sampled step's forward (cleared first).
  nn::Tap* tap();
  // After the sampled step's backward (gradients present): the record; clears the tap.
  telemetry::Record collect(int64_t step, double wall, double loss);

 private:
  nn::BackboneImpl& model_;
  torch::nn::Module* head_;
  int every_, bins_;
  telemetry::Header header_;
  std::vector<std::vector<size_t>> group_params_;  // parameter indices per group
  std::unique_ptr<nn::Tap> tap_;
};

}  // namespace msconv::train
