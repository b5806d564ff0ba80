#include "msconv/ui/chart_series.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace msconv::ui {

ChartSeries::ChartSeries(double smoothing, Best best, bool best_of_raw)
    : kind_(best), best_of_raw_(best_of_raw), smoother_(smoothing) {}

bool ChartSeries::append(double step, double wall, double y, double x) {
  step_.push_back(step);
  wall_.push_back(wall);
  y_.push_back(y);
  x_.push_back(x);
  sm_.push_back(smoother_.add(y));  // the debiased EMA continues: O(1) per point
  return updateBest();
}

bool ChartSeries::updateBest() {
  if (kind_ == Best::kNone || y_.empty()) return false;
  const double sign = kind_ == Best::kMax ? 1.0 : -1.0;
  const auto& v = judged();
  const int last = static_cast<int>(v.size()) - 1;
  if (best_ < 0) {  // after a rebuild: scan every point
    best_ = 0;
    for (int i = 1; i <= last; ++i)
      if (sign * v[i] > sign * v[best_]) best_ = i;
    return true;
  }
  if (sign * v[last] > sign * v[best_]) {
    best_ = last;
    return true;
  }
  return false;
}

void ChartSeries::rebuild(double smoothing,
                          const std::function<double(double step, double wall)>& x_of) {
  smoother_.reset(smoothing);
  for (size_t i = 0; i < y_.size(); ++i) {
    x_[i] = x_of(step_[i], wall_[i]);
    sm_[i] = smoother_.add(y_[i]);
  }
  best_ = -1;
  updateBest();
}

void ChartSeries::clear(double smoothing) {
  step_.clear(), wall_.clear(), y_.clear(), x_.clear(), sm_.clear();
  smoother_.reset(smoothing);
  best_ = -1;
}

double ChartSeries::bestValue() const {
  return best_ < 0 ? std::numeric_limits<double>::quiet_NaN() : judged()[best_];
}

size_t ChartSeries::nearest(double x) const {
  if (x_.empty()) return 0;
  const auto at = std::lower_bound(x_.begin(), x_.end(), x);
  size_t i = static_cast<size_t>(at - x_.begin());
  if (i == x_.size() || (i > 0 && x - x_[i - 1] < x_[i] - x)) i = i == 0 ? 0 : i - 1;
  return i;
}

}  // namespace msconv::ui
