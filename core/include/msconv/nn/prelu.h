// PReLU with one slope per channel, as a module whose state_dict matches torch.nn.PReLU ("weight")
// and whose forward and backward are parallel loops over contiguous planes. LibTorch 1.13's own
// per-channel PReLU backward is a fifth of MSNet-50's CPU training step; this one is several times
// faster and gives the same values (tests compare it with torch::prelu).
#pragma once

#include <torch/nn/module.h>

namespace msconv::nn {

// y = x if x > 0 else a[c] * x, for N x C (x ...) tensors; other layouts fall back to LibTorch.
torch::Tensor preluForward(const torch::Tensor& x, const torch::Tensor& weight);

class PReLUImpl : public torch::nn::Module {
 public:
  explicit PReLUImpl(int64_t channels, double init = 0.25);
  torch::Tensor forward(const torch::Tensor& x) { return preluForward(x, weight); }
  torch::Tensor weight;
};
TORCH_MODULE(PReLU);

}  // namespace msconv::nn
