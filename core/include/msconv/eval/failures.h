// The pairs a model gets wrong at an operating point, and the pairs two models disagree on: the
// failure browser of `msconv failures` and the Evaluation panel. Works on kept per-pair scores
// (pair_scores.h), at IJB-C scale (15.7 M template pairs) in well under a second.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "msconv/eval/pair_scores.h"

namespace msconv::eval {

// How each model decides: accept when score >= threshold (at a FAR), or as the 10-fold protocol
// decides (each pair by its fold's distance threshold; pair sets only).
struct OperatingPoint {
  bool from_folds = false;
  double far = 1e-3;
};

struct Decisions {
  double threshold = 0;           // the score threshold (from_folds: NaN)
  std::vector<uint8_t> accepted;  // per pair
};
// Throws msconv::Error naming the set when from_folds is asked of an IJB set or of scores
// without folds.
Decisions decide(const PairScores& scores, const OperatingPoint& op);

enum class FailureKind { kFalseAccept, kFalseReject, kOnlyFirstRight, kOnlySecondRight };
const char* failureKindName(FailureKind kind);  // "false accept", ..., "A right, B wrong"

struct FailureRow {
  int64_t pair = 0;
  FailureKind kind = FailureKind::kFalseAccept;
  // How far past its threshold the wrong model's decision is (>= 0): in score for a FAR, in
  // squared L2 distance for the folds.
  double margin = 0;
  std::vector<float> scores;      // every model's score
  std::vector<uint8_t> accepted;  // every model's decision
};

struct FailureList {
  std::vector<double> thresholds;                       // per model
  int64_t false_accepts = 0, false_rejects = 0;         // of the first model
  int64_t only_first_right = 0, only_second_right = 0;  // with two or more models
  std::vector<FailureRow> rows;  // the top K of each kind, by margin, largest first
};

// One model: its false accepts and false rejects. Two or more: the pairs where the first is right
// and the second wrong, and the reverse (margin: the wrong model's; later models' scores and
// decisions are shown, not compared). Every model's scores must be of the same set
// (checkSameSet: an error naming the other model's checkpoint). top_k per kind; ties by pair
// index. O(n) per model: a radix selection for the threshold, one pass, a partial selection of
// the top k (IJB-C's 15.7 M pairs: see ./lab bench's ijbcFailures).
FailureList listFailures(const std::vector<const PairScores*>& models, const OperatingPoint& op,
                         int top_k = 100);

}  // namespace msconv::eval
