// Margin-based softmax heads: insightface's combined margin cos(m1*theta + m2) - m3 scaled by s,
// with the ArcFace, CosFace and combined presets and plain softmax, over L2-normalised class
// centres, optionally sampling classes as Partial FC does (all positives plus random negatives).
#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <string>

#include "msconv/train/collective.h"

namespace msconv::train {

struct MarginSpec {
  std::string name = "arcface";
  double m1 = 1.0, m2 = 0.5, m3 = 0.0, s = 64.0;
  bool plain_softmax = false;  // "softmax": logits = s * cos, no margin
};

// "arcface" (1, 0.5, 0), "cosface" (1, 0, 0.4), "cml" (1, 0.3, 0.2), "softmax"; s = 64.
MarginSpec marginPreset(const std::string& name);

// Applies the margin to the target cosines and scales: N x C cosines, N labels -> N x C logits.
// Safe near theta + m > pi: beyond theta_max = (pi - m2) / m1 the target logit continues as
// cos(theta) - m3 - (cos(theta_max) + 1), continuous and decreasing, instead of folding back.
torch::Tensor marginLogits(const torch::Tensor& cosines, const torch::Tensor& labels,
                           const MarginSpec& spec);

// The classification head: C x D centres; forward(embeddings, labels) = mean cross-entropy of
// the margin logits. sample_rate < 1 keeps ceil(rate * C) classes per step (all of the batch's
// positives plus uniformly drawn negatives, from LibTorch's default generator).
//
// Sharded by class over a Collective's ranks (Partial FC's model parallelism): rank r holds the
// centres of classesShard(C, r, world) only; forward gathers every rank's embeddings and labels,
// and the softmax's max, normaliser and target logit are reduced across ranks, so the loss and
// gradients equal those of one head holding every class (sampling then happens per shard).
class MarginHeadImpl : public torch::nn::Module {
 public:
  MarginHeadImpl(int64_t embedding, int64_t classes, MarginSpec spec, double sample_rate = 1.0,
                 std::shared_ptr<Collective> group = nullptr);
  // This rank's embeddings and labels (global class ids) -> the mean loss over every rank's batch.
  torch::Tensor forward(const torch::Tensor& embeddings, const torch::Tensor& labels);
  // Cosines between normalised embeddings and this rank's (normalised) centres.
  torch::Tensor cosines(const torch::Tensor& embeddings) const;
  const MarginSpec& spec() const { return spec_; }
  int64_t classes() const { return classes_; }                  // over all shards
  std::pair<int64_t, int64_t> shard() const { return shard_; }  // this rank's [begin, end)
  torch::Tensor weight;                                         // (end - begin) x D

 private:
  MarginSpec spec_;
  double sample_rate_;
  int64_t classes_;
  std::pair<int64_t, int64_t> shard_;
  std::shared_ptr<Collective> group_;
};
TORCH_MODULE(MarginHead);

}  // namespace msconv::train
