// Dynamic loss scaling for mixed-precision training (what torch.cuda.amp.GradScaler does): the
// loss is multiplied by a scale before backward; gradients are divided by it before clipping and
// the step; a step whose gradients hold Inf or NaN is skipped and the scale halves; after
// `interval` clean steps in a row the scale doubles.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace msconv::train {

class Collective;

class GradScaler {
 public:
  explicit GradScaler(bool enabled, double init_scale = 65536.0, double growth = 2.0,
                      double backoff = 0.5, int64_t interval = 2000);
  bool enabled() const { return enabled_; }
  at::Tensor scale(const at::Tensor& loss) const;
  // Divides every gradient by the scale in place. Returns true when some gradient (on any rank,
  // when `group` is given) is not finite: the caller skips the optimizer step.
  bool unscale(const std::vector<at::Tensor>& params, Collective* group = nullptr);
  // After each step: backs off on overflow, grows after `interval` clean steps.
  void update(bool found_inf);
  double scaleValue() const { return scale_; }
  int64_t cleanSteps() const { return clean_; }
  void restore(double scale, int64_t clean) { scale_ = scale, clean_ = clean; }

 private:
  bool enabled_;
  double scale_, growth_, backoff_;
  int64_t interval_, clean_ = 0;
};

}  // namespace msconv::train
