// ROC curves from an exact ordering of every score, the way insightface's IJB evaluation reads
// them through scikit-learn: roc_curve (distinct thresholds, collinear points dropped), AUC by the
// trapezoid rule, and TAR at a FAR taken from the ROC point whose FAR is closest to it (ties: the
// larger TAR). Scales to IJB-C's 15.7 M scores: a radix sort, then one sweep.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace msconv::eval {

struct RocPoint {
  double far = 0, tar = 0, threshold = 0;
};

struct Roc {
  std::vector<RocPoint> points;  // the corners, FAR and TAR rising (first: 0, 0)
  double auc = 0;
  int64_t genuine = 0, impostor = 0;
  std::vector<std::pair<double, double>> tar_at_far;  // (FAR, TAR) for the requested FARs
};

// The FARs insightface reports for IJB: 1e-6 ... 1e-1.
const std::vector<double>& ijbFars();

// scores[i] (higher = more alike) with labels[i] (1 genuine, 0 impostor). Throws msconv::Error
// naming `what` when a score is NaN or one of the two classes is missing.
Roc computeRoc(const float* scores, const uint8_t* labels, int64_t n,
               const std::vector<double>& fars = ijbFars(), const std::string& what = "scores");

// The same from items made by rocItem, sorted in place (`scratch`: n more items of memory). For
// callers that produce scores in some other order and want no second copy of them.
uint64_t rocItem(float score, bool genuine);
Roc rocFromItems(uint64_t* items, uint64_t* scratch, int64_t n,
                 const std::vector<double>& fars = ijbFars(), const std::string& what = "scores");

// About `count` points, log-spaced in FAR from 1 / impostors to 1, for plotting: at each FAR the
// TAR of the curve's last corner at or below it.
std::vector<RocPoint> thinRoc(const Roc& roc, int count = 2000);

// "far,tar,threshold" lines with a header.
std::string rocCsv(const std::vector<RocPoint>& points);

}  // namespace msconv::eval
