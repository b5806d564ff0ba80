#include "msconv/train/margin.h"

#include <torch/torch.h>

#include <cmath>

#include "msconv/error.h"

namespace msconv::train {

MarginSpec marginPreset(const std::string& name) {
  MarginSpec s;
  s.name = name;
  if (name == "arcface")
    s.m1 = 1.0, s.m2 = 0.5, s.m3 = 0.0;
  else if (name == "cosface")
    s.m1 = 1.0, s.m2 = 0.0, s.m3 = 0.4;
  else if (name == "cml")
    s.m1 = 1.0, s.m2 = 0.3, s.m3 = 0.2;
  else if (name == "softmax")
    s.m1 = 1.0, s.m2 = 0.0, s.m3 = 0.0, s.plain_softmax = true;
  else if (name == "combined")
    s.m1 = 1.0, s.m2 = 0.0, s.m3 = 0.0;
  else
    throw Error("loss.type: unknown loss '" + name +
                "' (arcface, cosface, cml, combined, softmax)");
  return s;
}

torch::Tensor marginLogits(const torch::Tensor& cosines, const torch::Tensor& labels,
                           const MarginSpec& spec) {
  if (spec.plain_softmax) return cosines * spec.s;
  const auto idx = labels.view({-1, 1});
  const auto target = cosines.gather(1, idx);
  torch::Tensor adjusted;
  if (spec.m1 == 1.0 && spec.m2 == 0.0) {
    adjusted = target - spec.m3;  // CosFace: no angle needed
  } else {
    const double eps = 1e-7;
    const auto theta = torch::acos(target.clamp(-1 + eps, 1 - eps));
    const double theta_max = (M_PI - spec.m2) / spec.m1;
    const auto inside = torch::cos(spec.m1 * theta + spec.m2) - spec.m3;
    const auto beyond = target - spec.m3 - (std::cos(theta_max) + 1.0);
    adjusted = torch::where(theta <= theta_max, inside, beyond);
  }
  return cosines.scatter(1, idx, adjusted) * spec.s;
}

MarginHeadImpl::MarginHeadImpl(int64_t embedding, int64_t classes, MarginSpec spec,
                               double sample_rate, std::shared_ptr<Collective> group)
    : spec_(std::move(spec)),
      sample_rate_(sample_rate),
      classes_(classes),
      group_(group ? std::move(group) : singleProcess()) {
  if (classes < 2) throw Error("loss: needs at least 2 classes, got " + std::to_string(classes));
  if (sample_rate <= 0 || sample_rate > 1)
    throw Error("loss.sample_rate must be in (0, 1], got " + std::to_string(sample_rate));
  if (classes < group_->worldSize())
    throw Error("loss: " + std::to_string(classes) + " classes cannot be sharded over " +
                std::to_string(group_->worldSize()) + " ranks");
  shard_ = classShard(classes, group_->rank(), group_->worldSize());
  // Every rank draws the full matrix and keeps its rows, so a sharded head starts exactly where
  // an unsharded one with the same seed does.
  auto full = torch::randn({classes, embedding}) * 0.01;
  if (group_->worldSize() > 1)
    full = full.narrow(0, shard_.first, shard_.second - shard_.first).clone();
  weight = register_parameter("weight", full);
}

torch::Tensor MarginHeadImpl::cosines(const torch::Tensor& embeddings) const {
  namespace F = torch::nn::functional;
  return torch::mm(F::normalize(embeddings, F::NormalizeFuncOptions().dim(1)),
                   F::normalize(weight, F::NormalizeFuncOptions().dim(1)).t());
}

torch::Tensor MarginHeadImpl::forward(const torch::Tensor& embeddings,
                                      const torch::Tensor& labels) {
  namespace F = torch::nn::functional;
  Collective& g = *group_;
  const bool sharded = g.worldSize() > 1;
  auto e = F::normalize(embeddings, F::NormalizeFuncOptions().dim(1));
  torch::Tensor all_labels = labels;
  if (sharded) {
    e = allGatherAutograd(g, e);
    all_labels = g.allGather(labels);
  }
  const int64_t C = weight.size(0);
  auto local = all_labels - shard_.first;
  const auto mine = local.ge(0).logical_and(local.lt(C));
  local = torch::where(mine, local, torch::zeros_like(local));
  torch::Tensor w = weight;
  if (sample_rate_ < 1.0) {
    // Partial FC: this shard's positives, then random negatives up to the sampled count.
    const int64_t keep = std::max<int64_t>(2, static_cast<int64_t>(std::ceil(sample_rate_ * C)));
    const auto positives =
        std::get<0>(at::_unique(sharded ? local.masked_select(mine) : local, /*sorted=*/true));
    auto mask = torch::ones({C}, torch::kBool);
    mask.index_fill_(0, positives, false);
    const auto negatives = mask.nonzero().view(-1);
    const int64_t need = std::max<int64_t>(0, keep - positives.size(0));
    const auto chosen =
        negatives.index_select(0, torch::randperm(negatives.size(0), torch::kLong)
                                      .narrow(0, 0, std::min(need, negatives.size(0))));
    w = weight.index_select(0, torch::cat({positives, chosen}));
    // Labels remapped into the sampled index (positives come first, in sorted order).
    local = torch::searchsorted(positives, local)
                .clamp_max(std::max<int64_t>(0, positives.size(0) - 1));
  }
  const auto cos = torch::mm(e, F::normalize(w, F::NormalizeFuncOptions().dim(1)).t());
  if (!sharded) return F::cross_entropy(marginLogits(cos, local, spec_), local);

  // Cross-entropy over classes split across ranks: rows whose class lives elsewhere keep plain
  // scaled cosines here; max, normaliser and target logit are reduced over ranks.
  const auto logits =
      torch::where(mine.view({-1, 1}), marginLogits(cos, local, spec_), cos * spec_.s);
  auto max = std::get<0>(logits.detach().max(1, /*keepdim=*/true));
  g.allReduceMax(max);
  const auto sum_exp = allReduceSumAutograd(g, (logits - max).exp().sum(1, true));
  const auto target =
      allReduceSumAutograd(g, logits.gather(1, local.view({-1, 1})) * mine.view({-1, 1}));
  return (sum_exp.log() + max - target).mean();
}

}  // namespace msconv::train
