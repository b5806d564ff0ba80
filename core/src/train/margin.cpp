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
                               double sample_rate)
    : spec_(std::move(spec)), sample_rate_(sample_rate) {
  if (classes < 2) throw Error("loss: needs at least 2 classes, got " + std::to_string(classes));
  if (sample_rate <= 0 || sample_rate > 1)
    throw Error("loss.sample_rate must be in (0, 1], got " + std::to_string(sample_rate));
  weight = register_parameter("weight", torch::randn({classes, embedding}) * 0.01);
}

torch::Tensor MarginHeadImpl::cosines(const torch::Tensor& embeddings) const {
  namespace F = torch::nn::functional;
  return torch::mm(F::normalize(embeddings, F::NormalizeFuncOptions().dim(1)),
                   F::normalize(weight, F::NormalizeFuncOptions().dim(1)).t());
}

torch::Tensor MarginHeadImpl::forward(const torch::Tensor& embeddings,
                                      const torch::Tensor& labels) {
  namespace F = torch::nn::functional;
  const int64_t C = weight.size(0);
  const auto e = F::normalize(embeddings, F::NormalizeFuncOptions().dim(1));
  if (sample_rate_ >= 1.0) {
    const auto cos = torch::mm(e, F::normalize(weight, F::NormalizeFuncOptions().dim(1)).t());
    return F::cross_entropy(marginLogits(cos, labels, spec_), labels);
  }
  // Partial FC: the positives of this batch, then random negatives up to the sampled count.
  const int64_t keep = std::max<int64_t>(2, static_cast<int64_t>(std::ceil(sample_rate_ * C)));
  const auto positives = std::get<0>(at::_unique(labels, /*sorted=*/true));
  auto mask = torch::ones({C}, torch::kBool);
  mask.index_fill_(0, positives, false);
  const auto negatives = mask.nonzero().view(-1);
  const int64_t need = std::max<int64_t>(0, keep - positives.size(0));
  const auto chosen =
      negatives.index_select(0, torch::randperm(negatives.size(0), torch::kLong)
                                    .narrow(0, 0, std::min(need, negatives.size(0))));
  const auto index = torch::cat({positives, chosen});
  // Labels remapped into the sampled index (positives come first, in sorted order).
  const auto remap = torch::searchsorted(positives, labels);
  const auto w = F::normalize(weight.index_select(0, index), F::NormalizeFuncOptions().dim(1));
  const auto cos = torch::mm(e, w.t());
  return F::cross_entropy(marginLogits(cos, remap, spec_), remap);
}

}  // namespace msconv::train
