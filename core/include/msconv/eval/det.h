// DET curves, the equal error rate and score distributions of a verification, the field's way:
// FNMR against FMR on normal-deviate (probit) axes; EER where FNMR = FMR on the ROC interpolated
// linearly (the scikit-learn recipe: brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1), the
// threshold interp1d(fpr, thresholds)(eer)).
#pragma once

#include <cstdint>
#include <vector>

#include "msconv/eval/roc.h"

namespace msconv::eval {

struct DetPoint {
  double fmr = 0, fnmr = 0, threshold = 0;
};

struct Det {
  std::vector<DetPoint> points;  // FMR rising; about `count` points, log-spaced in FMR
  double eer = 0, eer_threshold = 0;
};

// From an exact ROC (computeRoc): FMR = FAR, FNMR = 1 - TAR.
Det computeDet(const Roc& roc, int count = 500);

// The inverse of the standard normal CDF (the DET axes), for p in (0, 1); +-inf at 0 and 1.
double normalDeviate(double p);

struct ScoreHistogram {
  double lo = 0, hi = 0;                   // bin edges lo + (hi - lo) * i / bins
  std::vector<int64_t> genuine, impostor;  // counts per bin
  double threshold = 0, far = 0;           // the threshold at the chosen FAR, and that FAR
};

// Genuine and impostor score histograms over [min, max] of the scores, with the threshold of
// thresholdAtFar(far) marked.
ScoreHistogram scoreHistogram(const float* scores, const uint8_t* labels, int64_t n, int bins,
                              double far);

// The lowest score threshold ("accept" when score >= threshold) at which the impostors'
// acceptance rate is at most `far`. Throws msconv::Error when there are no impostors or far is
// not in (0, 1].
double thresholdAtFar(const float* scores, const uint8_t* labels, int64_t n, double far);

}  // namespace msconv::eval
