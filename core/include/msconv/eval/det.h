// DET curves, the equal error rate and score distributions of a verification, the field's way:
// FNMR against FMR on normal-deviate (probit) axes; EER where FNMR = FMR on the ROC interpolated
// linearly (the scikit-learn recipe: brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1), the
// threshold interp1d(fpr, thresholds)(eer) on scikit-learn's roc_curve with its collinear points
// dropped, as computeRoc builds it). Where the root lies on a vertical run of the ROC (interp1d
// jumps there), the EER is that run's FAR and the threshold that of the run's end where
// |1 - FAR - TAR| is smaller, the side brentq stops on; a segment starting at (0, 0), whose
// threshold is above every score, takes its upper end's threshold. Checked against a brute-force
// transcription of the recipe (tests/eval/test_det_failures.cpp) and against scikit-learn and
// SciPy themselves (tests/cli/test_eval_cli.py).
#pragma once

#include <cstdint>
#include <vector>

#include "msconv/eval/roc.h"

namespace msconv::eval {

struct DetPoint {
  double fmr = 0, fnmr = 0, threshold = 0;
};

struct Det {
  // `count` points log-spaced in FMR from 1 / impostors to 1 (thinRoc's grid): at each, the FNMR
  // and threshold of the ROC's last corner at or below that FMR (FNMR = rejected genuine pairs /
  // genuine pairs; threshold +inf where nothing is accepted). Plot on normalDeviate axes.
  std::vector<DetPoint> points;
  double eer = 0, eer_threshold = 0;
};

// From an exact ROC (computeRoc): FMR = FAR, FNMR = 1 - TAR. An empty Det for an empty ROC.
Det computeDet(const Roc& roc, int count = 500);

// The inverse of the standard normal CDF (the DET axes), for p in (0, 1); +-inf at 0 and 1.
double normalDeviate(double p);

struct ScoreHistogram {
  double lo = 0, hi = 0;                   // bin edges lo + (hi - lo) * i / bins
  std::vector<int64_t> genuine, impostor;  // counts per bin
  double threshold = 0, far = 0;           // the threshold at the chosen FAR, and that FAR
};

// Genuine and impostor score histograms over [min, max] of the scores (bin i holds
// lo + (hi - lo) i / bins <= score < the next edge; the maximum in the last bin), with the
// threshold of thresholdAtFar(far) marked. Throws as thresholdAtFar does.
ScoreHistogram scoreHistogram(const float* scores, const uint8_t* labels, int64_t n, int bins,
                              double far);

// The lowest score threshold ("accept" when score >= threshold) at which the impostors'
// acceptance rate is at most `far`: at most floor(far x impostors) accepted, so just above the
// next impostor score (the lowest impostor score when every impostor may pass). O(n): a radix
// selection over the scores' bits, no sort. Throws msconv::Error when there are no impostors, a
// score is NaN or far is not in (0, 1].
double thresholdAtFar(const float* scores, const uint8_t* labels, int64_t n, double far);

}  // namespace msconv::eval
