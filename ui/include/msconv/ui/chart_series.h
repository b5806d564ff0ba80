// One run's curve on one training chart, as data: the raw points, each point's x in the chart's
// current axis units, the debiased smoothed values (Smoother), the best point and what the
// crosshair reads at an x. No widgets and no Qt: the Training panel draws it, tests check it.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "msconv/ui/smoothing.h"

namespace msconv::ui {

class ChartSeries {
 public:
  enum class Best { kNone, kMin, kMax };
  // `best_of_raw`: the best point is judged on raw values (validation is not batch noise),
  // otherwise on the smoothed ones.
  ChartSeries(double smoothing, Best best, bool best_of_raw);

  // Appends a point; returns true when the best point changed.
  bool append(double step, double wall, double y, double x);
  // Every x and smoothed value again (a new axis or smoothing weight).
  void rebuild(double smoothing, const std::function<double(double step, double wall)>& x_of);
  void clear(double smoothing);

  size_t size() const { return y_.size(); }
  bool empty() const { return y_.empty(); }
  const std::vector<double>& steps() const { return step_; }
  const std::vector<double>& walls() const { return wall_; }
  const std::vector<double>& raw() const { return y_; }
  const std::vector<double>& x() const { return x_; }
  const std::vector<double>& smoothed() const { return sm_; }
  // The best point's index (-1: none, or Best::kNone) and value (NaN when none).
  int bestIndex() const { return best_; }
  double bestValue() const;
  double bestX() const { return best_ < 0 ? 0 : x_[best_]; }
  // The point nearest to x (x_ ascending, as steps and times are); size() when empty.
  size_t nearest(double x) const;

 private:
  bool updateBest();
  const std::vector<double>& judged() const { return best_of_raw_ ? y_ : sm_; }
  Best kind_;
  bool best_of_raw_;
  Smoother smoother_;
  std::vector<double> step_, wall_, y_, x_, sm_;
  int best_ = -1;
};

}  // namespace msconv::ui
