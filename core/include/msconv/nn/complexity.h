// Parameters and multiply-accumulates (conv and linear layers) of a backbone at an input size,
// in total and per module.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace msconv::nn {

class BackboneImpl;

struct ModuleCost {
  std::string name;  // module path, truncated to the requested depth ("stage_1.0")
  int64_t params = 0;
  int64_t macs = 0;
};

struct Complexity {
  int input = 112;
  int64_t params = 0;
  int64_t trainable_params = 0;
  int64_t macs = 0;                 // per image
  std::vector<ModuleCost> modules;  // in forward order
};

// Runs one image of input x input through the model (eval mode, no grad) counting MACs.
// `depth` is how many name components the per-module rows keep (1: "stage_1", 2: "stage_1.0").
Complexity measureComplexity(BackboneImpl& model, int input = 112, int depth = 2);

}  // namespace msconv::nn
