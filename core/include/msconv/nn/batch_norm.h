// BatchNorm that can synchronise its batch statistics across data-parallel ranks, with
// nn.SyncBatchNorm's semantics: in training, the mean and variance are those of every rank's
// samples together (forward), and the gradient flows through those global statistics (backward).
// Without a sync attached, or in eval mode, it is LibTorch's BatchNorm: same parameters, same
// buffers, same state-dict names.
#pragma once

#include <torch/nn/modules/batchnorm.h>

#include <memory>
#include <vector>

namespace msconv::nn {

// A sum over ranks, in place (the training module's collective plugs in here).
class BatchSync {
 public:
  virtual ~BatchSync() = default;
  virtual void allReduceSum(std::vector<at::Tensor>& tensors) = 0;
};

class BatchNorm2dImpl : public torch::nn::BatchNorm2dImpl {
 public:
  using torch::nn::BatchNorm2dImpl::BatchNorm2dImpl;
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<BatchSync> sync;
  // Folded into the preceding convolution (nn::prepareInference): forward passes its input on,
  // and refuses training.
  bool folded = false;
};
TORCH_MODULE(BatchNorm2d);

class BatchNorm1dImpl : public torch::nn::BatchNorm1dImpl {
 public:
  using torch::nn::BatchNorm1dImpl::BatchNorm1dImpl;
  at::Tensor forward(const at::Tensor& input);
  std::shared_ptr<BatchSync> sync;
};
TORCH_MODULE(BatchNorm1d);

// Attaches `sync` to every BatchNorm of `module` (nullptr detaches); returns how many.
int syncBatchNorm(torch::nn::Module& module, std::shared_ptr<BatchSync> sync);

}  // namespace msconv::nn
