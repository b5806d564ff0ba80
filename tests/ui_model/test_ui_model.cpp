// The workbench's Qt-free pieces: chart series maths (smoothing, best value, nearest point, a
// rebuild after an axis change) and the run states' actions.
#include <gtest/gtest.h>

#include <cmath>

#include "msconv/ui/chart_series.h"
#include "msconv/ui/run_state.h"

using namespace msconv::ui;

TEST(ChartSeries, SmoothsTracksTheBestAndReadsTheNearestPoint) {
  ChartSeries loss(0.6, ChartSeries::Best::kMin, /*best_of_raw=*/false);
  EXPECT_TRUE(std::isnan(loss.bestValue()));
  const double ys[] = {4.0, 2.0, 3.0, 1.0, 5.0};
  for (int i = 0; i < 5; ++i) loss.append(10 * (i + 1), 100 + i, ys[i], 10 * (i + 1));
  // The debiased EMA by hand: s_n = 0.6 s_{n-1} + 0.4 y_n, shown as s_n / (1 - 0.6^n).
  double s = 0, wn = 1;
  for (int i = 0; i < 5; ++i) {
    s = 0.6 * s + 0.4 * ys[i];
    wn *= 0.6;
    EXPECT_NEAR(loss.smoothed()[i], s / (1 - wn), 1e-12) << i;
  }
  // The best of the smoothed loss is its minimum, wherever that is.
  int argmin = 0;
  for (int i = 1; i < 5; ++i)
    if (loss.smoothed()[i] < loss.smoothed()[argmin]) argmin = i;
  EXPECT_EQ(loss.bestIndex(), argmin);
  EXPECT_DOUBLE_EQ(loss.bestValue(), loss.smoothed()[argmin]);
  EXPECT_EQ(loss.nearest(24), 1u);  // x = 20
  EXPECT_EQ(loss.nearest(26), 2u);  // x = 30
  EXPECT_EQ(loss.nearest(-5), 0u);
  EXPECT_EQ(loss.nearest(1e9), 4u);
  // A new axis (wall time) and no smoothing: x follows, smoothed equals raw, best on raw minimum.
  loss.rebuild(0.0, [](double step, double wall) { return wall - 100; });
  EXPECT_EQ(loss.x()[4], 4.0);
  EXPECT_EQ(loss.smoothed(), loss.raw());
  EXPECT_EQ(loss.bestIndex(), 3);
  loss.clear(0.6);
  EXPECT_TRUE(loss.empty());
  EXPECT_EQ(loss.bestIndex(), -1);
}

TEST(ChartSeries, ValidationJudgesRawValuesAndOnlyMovesOnAnImprovement) {
  ChartSeries acc(0.9, ChartSeries::Best::kMax, /*best_of_raw=*/true);
  EXPECT_TRUE(acc.append(1, 0, 0.70, 1));
  EXPECT_TRUE(acc.append(2, 0, 0.90, 2));
  EXPECT_FALSE(acc.append(3, 0, 0.80, 3));  // smoothed still rises, the raw best stays
  EXPECT_DOUBLE_EQ(acc.bestValue(), 0.90);
  EXPECT_EQ(acc.bestX(), 2);
  ChartSeries lr(0.6, ChartSeries::Best::kNone, false);
  EXPECT_FALSE(lr.append(1, 0, 0.1, 1));
  EXPECT_EQ(lr.bestIndex(), -1);
}

TEST(RunState, StatesNamesAndTheirActions) {
  using msconv::store::RunStatus;
  EXPECT_EQ(stateOf(RunStatus::kDone), RunState::kDone);
  EXPECT_EQ(stateOf(RunStatus::kUnknown), RunState::kUnknown);
  EXPECT_STREQ(stateName(RunState::kQueued), "queued");
  EXPECT_STREQ(stateName(stateOf(RunStatus::kInterrupted)), "interrupted");
  EXPECT_EQ(actionsFor(RunState::kRunning),
            (std::vector<RunAction>{RunAction::kPause, RunAction::kResume, RunAction::kStop}));
  EXPECT_EQ(actionsFor(RunState::kQueued), std::vector<RunAction>{RunAction::kDequeue});
  EXPECT_EQ(actionsFor(RunState::kStopped), std::vector<RunAction>{RunAction::kEvaluate});
  EXPECT_TRUE(actionsFor(RunState::kFailed).empty());
  EXPECT_FALSE(hasRunFolder(RunState::kQueued));
  EXPECT_TRUE(hasRunFolder(RunState::kFailed));
}
