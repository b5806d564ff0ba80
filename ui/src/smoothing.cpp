#include "msconv/ui/smoothing.h"

namespace msconv::ui {

double Smoother::add(double x) {
  s_ = w_ * s_ + (1 - w_) * x;
  wn_ *= w_;
  return wn_ < 1 ? s_ / (1 - wn_) : x;
}

void Smoother::reset(double weight) {
  w_ = weight;
  s_ = 0;
  wn_ = 1;
}

std::vector<double> smooth(const std::vector<double>& xs, double weight) {
  Smoother s(weight);
  std::vector<double> out;
  out.reserve(xs.size());
  for (double x : xs) out.push_back(s.add(x));
  return out;
}

}  // namespace msconv::ui
