#include "msconv/train/grad_scaler.h"

#include <torch/torch.h>

#include "msconv/error.h"
#include "msconv/train/collective.h"

namespace msconv::train {

GradScaler::GradScaler(bool enabled, double init_scale, double growth, double backoff,
                       int64_t interval)
    : enabled_(enabled),
      scale_(init_scale),
      growth_(growth),
      backoff_(backoff),
      interval_(interval) {
  if (init_scale <= 0 || growth <= 1 || backoff <= 0 || backoff >= 1 || interval < 1)
    throw Error("GradScaler: scale > 0, growth > 1, 0 < backoff < 1 and interval >= 1 required");
}

at::Tensor GradScaler::scale(const at::Tensor& loss) const {
  return enabled_ ? loss * scale_ : loss;
}

bool GradScaler::unscale(const std::vector<at::Tensor>& params, Collective* group) {
  if (!enabled_) return false;
  torch::NoGradGuard no_grad;
  bool bad = false;
  for (const auto& p : params) {
    auto g = p.grad();
    if (!g.defined()) continue;
    g.mul_(1.0 / scale_);
    if (!bad && !torch::isfinite(g).all().item<bool>()) bad = true;
  }
  if (group && group->worldSize() > 1) {
    auto flag = torch::full({1}, bad ? 1.0 : 0.0);
    group->allReduceMax(flag);
    bad = flag.item<double>() > 0;
  }
  return bad;
}

void GradScaler::update(bool found_inf) {
  if (!enabled_) return;
  if (found_inf) {
    scale_ *= backoff_;
    clean_ = 0;
  } else if (++clean_ >= interval_) {
    scale_ *= growth_;
    clean_ = 0;
  }
}

}  // namespace msconv::train
