// Building blocks shared by the operators and backbones: convolution and linear layers that report
// their multiply-accumulates to a complexity counter, and conv + BN + activation stacks named the
// way PyTorch's nn.Sequential names them ("0", "1", "2"), so state_dicts map one to one.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "msconv/nn/inference_conv.h"
#include "msconv/nn/spec.h"

namespace msconv::nn {

// Receives multiply-accumulate counts from layers while a MacCountScope is active in this thread.
class MacCounter {
 public:
  virtual ~MacCounter() = default;
  virtual void add(const torch::nn::Module* module, int64_t macs) = 0;
};

// Makes `counter` the receiver for this thread while the scope lives.
class MacCountScope {
 public:
  explicit MacCountScope(MacCounter* counter);
  ~MacCountScope();
  MacCountScope(const MacCountScope&) = delete;
  MacCountScope& operator=(const MacCountScope&) = delete;

 private:
  MacCounter* previous_;
};

// Reports `macs` for `module` to this thread's counter, if any.
void reportMacs(const torch::nn::Module* module, int64_t macs);

// nn::Conv2d that reports its MACs (per sample: output positions x Cout x Cin/groups x kh x kw).
class CountedConv2dImpl : public torch::nn::Conv2dImpl {
 public:
  using torch::nn::Conv2dImpl::Conv2dImpl;
  torch::Tensor forward(const torch::Tensor& input);
  // act(conv(input) + residual) as one fused oneDNN primitive where no gradient is wanted
  // (nn/inference_conv.h), or an undefined tensor where that does not apply (zero padding only,
  // and not where the grouped-convolution plan runs the hand-written forward for the shape).
  torch::Tensor forwardFused(const torch::Tensor& input, const ConvEpilogue& epilogue);

 private:
  void countMacs(const torch::Tensor& out);
  std::shared_ptr<InferenceConvState> fused_;
};
TORCH_MODULE(CountedConv2d);

// nn::Linear that reports its MACs.
class CountedLinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& input);
};
TORCH_MODULE(CountedLinear);

// kPReLUShared: torch.nn.PReLU() (one slope, weight [1]); kPReLUChannel: torch.nn.PReLU(C).
enum class Act { kNone, kReLU, kPReLUShared, kPReLUChannel };

// The PReLU activation with the frame's slope shape.
Act preluAct(PReluSlopes slopes);

struct ConvOpts {
  int in = 0, out = 0, kernel = 1, stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = false;
};

CountedConv2d makeConv(const ConvOpts& o);

// Sequential(conv, BatchNorm2d[, activation]): children "0", "1", "2".
torch::nn::Sequential convBnAct(const ConvOpts& o, Act act);

}  // namespace msconv::nn
