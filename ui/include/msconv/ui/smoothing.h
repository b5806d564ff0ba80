// Pure chart logic (no widgets): the debiased exponential moving average TensorBoard draws over a
// faint raw curve. s_n = w s_{n-1} + (1 - w) x_n with s_0 = 0, shown as s_n / (1 - w^n), so the
// first points are not pulled towards zero.
#pragma once

#include <vector>

namespace msconv::ui {

class Smoother {
 public:
  explicit Smoother(double weight = 0.6) : w_(weight) {}
  double add(double x);  // the smoothed value after x
  void reset(double weight);

 private:
  double w_, s_ = 0, wn_ = 1;  // wn_ = w^n
};

std::vector<double> smooth(const std::vector<double>& xs, double weight);

}  // namespace msconv::ui
