// Backbone gradients summed across data-parallel ranks while the backward pass still runs, as
// PyTorch's DistributedDataParallel does: parameters in buckets of about `bucket_bytes`, in the
// reverse of their registration order (roughly the order backward produces their gradients);
// a bucket's sum starts as soon as the last of its gradients is accumulated, buckets start in
// the same order on every rank, and finish() waits for them all. Internal to the train module.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

#include "msconv/train/collective.h"

namespace msconv::train {

class GradientSync {
 public:
  GradientSync(std::vector<torch::Tensor> params, Collective& group, size_t bucket_bytes = 1 << 20);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;
  // The next backward pass produces the step's final gradients: sum them as they come.
  void arm();
  // After that backward pass: starts what has not started, waits for every sum.
  void finish();

  struct State;

 private:
  std::shared_ptr<State> state_;
  std::vector<std::vector<size_t>> buckets_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
};

}  // namespace msconv::train
