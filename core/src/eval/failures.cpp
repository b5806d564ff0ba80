#include "msconv/eval/failures.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "msconv/error.h"
#include "msconv/eval/det.h"

namespace msconv::eval {
namespace {

struct FailureCandidate {
  double margin;
  int64_t pair;
};

// The top k by margin (largest first, ties by pair index): a partial selection, then a sort of
// the k kept.
void keepTopByMargin(std::vector<FailureCandidate>& c, int top_k) {
  auto better = [](const FailureCandidate& a, const FailureCandidate& b) {
    return a.margin != b.margin ? a.margin > b.margin : a.pair < b.pair;
  };
  const size_t k = std::min(c.size(), static_cast<size_t>(std::max(0, top_k)));
  if (k < c.size()) std::nth_element(c.begin(), c.begin() + k, c.end(), better);
  c.resize(k);
  std::sort(c.begin(), c.end(), better);
}

std::string modelName(const PairScores& s) {
  return s.checkpoint.empty() ? s.set_path : s.checkpoint;
}

}  // namespace

Decisions decide(const PairScores& s, const OperatingPoint& op) {
  Decisions d;
  const int64_t n = static_cast<int64_t>(s.size());
  if (static_cast<int64_t>(s.label.size()) != n)
    throw Error(modelName(s) + ": " + std::to_string(s.label.size()) + " labels for " +
                std::to_string(n) + " scores");
  d.accepted.resize(n);
  uint8_t* acc = d.accepted.data();
  if (op.from_folds) {
    if (s.is_ijb || s.dist.size() != s.size() || s.fold.size() != s.size() ||
        s.fold_thresholds.empty())
      throw Error(s.set + " (" + modelName(s) +
                  "): the 10-fold thresholds exist for pair sets (.bin) only; use a FAR");
    d.threshold = std::numeric_limits<double>::quiet_NaN();
    const double* dist = s.dist.data();
    const uint8_t* fold = s.fold.data();
    const size_t folds = s.fold_thresholds.size();
    for (int64_t i = 0; i < n; ++i)
      if (fold[i] >= folds)
        throw Error(modelName(s) + ": pair " + std::to_string(i) + " is in fold " +
                    std::to_string(fold[i]) + " of " + std::to_string(folds));
    const double* thr = s.fold_thresholds.data();
    for (int64_t i = 0; i < n; ++i) acc[i] = dist[i] < thr[fold[i]];
    return d;
  }
  d.threshold = thresholdAtFar(s.score.data(), s.label.data(), n, op.far);
  // The comparison in float, as the scores are: one vectorisable loop.
  const float t = static_cast<float>(d.threshold);
  const float* score = s.score.data();
  for (int64_t i = 0; i < n; ++i) acc[i] = score[i] >= t;
  return d;
}

const char* failureKindName(FailureKind kind) {
  switch (kind) {
    case FailureKind::kFalseAccept:
      return "false accept";
    case FailureKind::kFalseReject:
      return "false reject";
    case FailureKind::kOnlyFirstRight:
      return "A right, B wrong";
    case FailureKind::kOnlySecondRight:
      return "A wrong, B right";
  }
  return "?";
}

FailureList listFailures(const std::vector<const PairScores*>& models, const OperatingPoint& op,
                         int top_k) {
  if (models.empty()) throw Error("failures: no model");
  const PairScores& first = *models[0];
  for (size_t m = 1; m < models.size(); ++m)
    checkSameSet(*models[m], first.label, modelName(*models[m]));
  const int64_t n = static_cast<int64_t>(first.size());
  FailureList out;
  std::vector<Decisions> dec;
  for (const auto* m : models) {
    dec.push_back(decide(*m, op));
    out.thresholds.push_back(dec.back().threshold);
  }
  // How far past its threshold model m's decision on pair i is: in score for a FAR, in distance
  // for the folds (both >= 0 on the wrong side).
  auto margin = [&](size_t m, int64_t i) {
    const PairScores& s = *models[m];
    if (op.from_folds) {
      const double d = s.dist[i] - s.fold_thresholds[s.fold[i]];
      return s.label[i] ? d : -d;
    }
    const double d = static_cast<double>(s.score[i]) - dec[m].threshold;
    return s.label[i] ? -d : d;
  };
  const uint8_t* label = first.label.data();
  const uint8_t* a = dec[0].accepted.data();
  std::vector<FailureCandidate> fa, fr, only_a, only_b;
  if (models.size() == 1) {
    for (int64_t i = 0; i < n; ++i) {
      if (a[i] == label[i]) continue;
      (label[i] ? fr : fa).push_back({margin(0, i), i});
    }
  } else {
    const uint8_t* b = dec[1].accepted.data();
    for (int64_t i = 0; i < n; ++i) {
      const bool a_right = a[i] == label[i], b_right = b[i] == label[i];
      if (!a_right) ++(label[i] ? out.false_rejects : out.false_accepts);
      if (a_right && !b_right) only_a.push_back({margin(1, i), i});
      if (!a_right && b_right) only_b.push_back({margin(0, i), i});
    }
  }
  if (models.size() == 1) {
    out.false_accepts = static_cast<int64_t>(fa.size());
    out.false_rejects = static_cast<int64_t>(fr.size());
  } else {
    out.only_first_right = static_cast<int64_t>(only_a.size());
    out.only_second_right = static_cast<int64_t>(only_b.size());
  }
  auto emit = [&](std::vector<FailureCandidate>& c, FailureKind kind) {
    keepTopByMargin(c, top_k);
    for (const auto& x : c) {
      FailureRow r;
      r.pair = x.pair;
      r.kind = kind;
      r.margin = x.margin;
      for (size_t m = 0; m < models.size(); ++m) {
        r.scores.push_back(models[m]->score[x.pair]);
        r.accepted.push_back(dec[m].accepted[x.pair]);
      }
      out.rows.push_back(std::move(r));
    }
  };
  if (models.size() == 1) {
    emit(fa, FailureKind::kFalseAccept);
    emit(fr, FailureKind::kFalseReject);
  } else {
    emit(only_a, FailureKind::kOnlyFirstRight);
    emit(only_b, FailureKind::kOnlySecondRight);
  }
  return out;
}

}  // namespace msconv::eval
