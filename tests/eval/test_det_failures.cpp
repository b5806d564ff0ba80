// DET curves, EER, thresholds at a FAR, score histograms, kept per-pair scores and the failure
// lists, each against a direct (brute-force) computation written here from the definitions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>

#include <unistd.h>

#include "msconv/error.h"
#include "msconv/eval/det.h"
#include "msconv/eval/failures.h"
#include "msconv/eval/pair_scores.h"
#include "msconv/eval/roc.h"
#include "msconv/eval/verification.h"
#include "msconv/workspace/workspace.h"

namespace fs = std::filesystem;
using namespace msconv::eval;

namespace {

struct ScoredPairs {
  std::vector<float> score;
  std::vector<uint8_t> label;
};

// Genuine ~ N(mu, 1), impostor ~ N(0, 1), labels shuffled by `label_seed`; `step` > 0 rounds
// the scores to multiples of it (ties).
ScoredPairs normalPairScores(int genuine, int impostor, double mu, unsigned seed, double step = 0,
                             unsigned label_seed = 99) {
  ScoredPairs s;
  s.label.assign(genuine + impostor, 0);
  std::fill(s.label.begin(), s.label.begin() + genuine, 1);
  std::mt19937 shuffle(label_seed);
  std::shuffle(s.label.begin(), s.label.end(), shuffle);
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd;
  for (uint8_t g : s.label) {
    double v = nd(rng) + (g ? mu : 0.0);
    if (step > 0) v = std::round(v / step) * step;
    s.score.push_back(static_cast<float>(v));
  }
  return s;
}

// scikit-learn's roc_curve (drop_intermediate=True, as the EER recipe calls it): one point per
// distinct score (accept when score >= it), counted directly; the points where both second
// differences of the counts vanish dropped; a leading (0, 0) at threshold +inf. O(n^2).
struct FullRocCurve {
  std::vector<double> fpr, tpr, thr;
};
FullRocCurve bruteRocCurve(const ScoredPairs& s) {
  std::vector<float> t = s.score;
  std::sort(t.begin(), t.end(), std::greater<float>());
  t.erase(std::unique(t.begin(), t.end()), t.end());
  double P = 0, N = 0;
  for (auto l : s.label) (l ? P : N) += 1;
  std::vector<double> tps, fps;
  for (float th : t) {
    double tp = 0, fp = 0;
    for (size_t i = 0; i < s.score.size(); ++i)
      if (s.score[i] >= th) (s.label[i] ? tp : fp) += 1;
    tps.push_back(tp);
    fps.push_back(fp);
  }
  FullRocCurve r{{0}, {0}, {std::numeric_limits<double>::infinity()}};
  for (size_t i = 0; i < t.size(); ++i) {
    const bool keep = i == 0 || i + 1 == t.size() || fps[i + 1] - 2 * fps[i] + fps[i - 1] != 0 ||
                      tps[i + 1] - 2 * tps[i] + tps[i - 1] != 0;
    if (!keep) continue;
    r.fpr.push_back(fps[i] / N);
    r.tpr.push_back(tps[i] / P);
    r.thr.push_back(t[i]);
  }
  return r;
}

// scipy.interpolate.interp1d(x, y)(v), kind linear: searchsorted(x, v, 'left') clipped to
// [1, len - 1], then the line through (x[lo], y[lo]) and (x[hi], y[hi]).
double scipyInterp1d(const std::vector<double>& x, const std::vector<double>& y, double v) {
  size_t hi = std::lower_bound(x.begin(), x.end(), v) - x.begin();
  hi = std::clamp<size_t>(hi, 1, x.size() - 1);
  const size_t lo = hi - 1;
  return y[lo] + (y[hi] - y[lo]) / (x[hi] - x[lo]) * (v - x[lo]);
}

// The scikit-learn EER recipe: brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1), here by
// bisection to 1e-15 ending as brentq ends, at the side of the last bracket where |f| is smaller
// (at 0 the function is taken as 1, where interp1d divides 0 by 0); then
// interp1d(fpr, thresholds)(eer).
std::pair<double, double> bruteEer(const FullRocCurve& r) {
  auto f = [&](double x) { return x <= 0 ? 1.0 : 1.0 - x - scipyInterp1d(r.fpr, r.tpr, x); };
  double lo = 0, hi = 1;
  while (hi - lo > 1e-15) {
    const double mid = (lo + hi) / 2;
    (f(mid) > 0 ? lo : hi) = mid;
  }
  const double eer = std::abs(f(lo)) < std::abs(f(hi)) ? lo : hi;
  // The first segment's upper threshold where the lower one is +inf (above every score).
  size_t h = std::clamp<size_t>(std::lower_bound(r.fpr.begin(), r.fpr.end(), eer) - r.fpr.begin(),
                                1, r.fpr.size() - 1);
  const double thr = std::isinf(r.thr[h - 1]) ? r.thr[h] : scipyInterp1d(r.fpr, r.thr, eer);
  return {eer, thr};
}

PairScores randomPairScores(int n, bool ijb, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  PairScores s;
  s.set = ijb ? "ijbc" : "val";
  s.set_path = ijb ? "/data/ijb" : "/data/val.bin";
  s.checkpoint = "/runs/a/best.ckpt";
  s.is_ijb = ijb;
  for (int i = 0; i < n; ++i) {
    s.score.push_back(static_cast<float>(u(rng)));
    s.label.push_back(u(rng) > 0);
    if (ijb) {
      s.t1.push_back(1000 + i);
      s.t2.push_back(5 * i + 3);
    } else {
      s.dist.push_back(2 + u(rng));
      s.fold.push_back(static_cast<uint8_t>(i * 10 / n));
    }
  }
  if (!ijb)
    for (int f = 0; f < 10; ++f) s.fold_thresholds.push_back(1.5 + 0.01 * f + 1e-17 * f);
  return s;
}

void expectSameScores(const PairScores& a, const PairScores& b) {
  EXPECT_EQ(a.score, b.score);
  EXPECT_EQ(a.label, b.label);
  EXPECT_EQ(a.dist, b.dist);
  EXPECT_EQ(a.fold, b.fold);
  EXPECT_EQ(a.fold_thresholds, b.fold_thresholds);
  EXPECT_EQ(a.t1, b.t1);
  EXPECT_EQ(a.t2, b.t2);
  EXPECT_EQ(a.is_ijb, b.is_ijb);
}

std::string detTempDir(const std::string& name) {
  const auto d = fs::temp_directory_path() /
                 ("msconv_det_" + name + "_" +
                  std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                  std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::string errorMessageOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const msconv::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Det, EerAndThresholdAgainstTheScikitLearnRecipe) {
  // Continuous scores, and scores rounded (ties: vertical and horizontal runs). Some roots lie on
  // a vertical run of the ROC, where the threshold is one of the run's two ends.
  int on_vertical_run = 0, vertical_at_first = 0;
  // By hand, in falling score order: I G I G I G I G I (to FAR 0.5, TAR 0.4), then G G G G (a
  // vertical run to TAR 0.8: 1 - FAR - TAR goes from 0.1 to -0.3), then I I I I I G G.
  ScoredPairs hand;
  const char* order = "IGIGIGIGIGGGGIIIIIGG";
  for (int i = 0; order[i]; ++i) {
    hand.score.push_back(static_cast<float>(20 - i));
    hand.label.push_back(order[i] == 'G');
  }
  for (double step : {-1.0, 0.0, 0.25, 1.0}) {
    for (unsigned seed : {1u, 2u, 3u}) {
      if (step < 0 && seed > 1) continue;
      const auto s = step < 0 ? hand : normalPairScores(120, 380, 1.5, seed, step);
      const Roc roc = computeRoc(s.score.data(), s.label.data(), s.score.size());
      const Det det = computeDet(roc, 200);
      const FullRocCurve curve = bruteRocCurve(s);
      const auto [eer, thr] = bruteEer(curve);
      for (size_t q = 0; q + 1 < curve.fpr.size(); ++q)
        if (curve.fpr[q] == det.eer && curve.fpr[q + 1] == det.eer) {
          ++on_vertical_run;
          vertical_at_first += det.eer_threshold == curve.thr[q];
          break;
        }
      EXPECT_NEAR(det.eer, eer, 1e-9) << "step " << step << " seed " << seed;
      EXPECT_NEAR(det.eer_threshold, thr, 1e-6) << "step " << step << " seed " << seed;
      EXPECT_GT(det.eer, 0.05);
      EXPECT_LE(det.eer, 0.5);
    }
  }
  EXPECT_GT(on_vertical_run, vertical_at_first);  // some at the run's last point
  EXPECT_GT(vertical_at_first, 0);                // some at its first
}

TEST(Det, PointsAreFnmrAgainstFmrAtEachThreshold) {
  const auto s = normalPairScores(300, 3000, 2.0, 7);
  const Roc roc = computeRoc(s.score.data(), s.label.data(), s.score.size());
  const Det det = computeDet(roc, 100);
  ASSERT_EQ(det.points.size(), 100u);
  EXPECT_NEAR(det.points.front().fmr, 1.0 / 3000, 1e-12);
  EXPECT_NEAR(det.points.back().fmr, 1.0, 1e-12);
  for (size_t k = 0; k < det.points.size(); ++k) {
    const auto& p = det.points[k];
    if (k) {
      EXPECT_GT(p.fmr, det.points[k - 1].fmr);
      EXPECT_LE(p.fnmr, det.points[k - 1].fnmr);
    }
    // At the point's threshold: the genuine share rejected, and impostors accepted at most FMR.
    int64_t rejected = 0, accepted = 0;
    for (size_t i = 0; i < s.score.size(); ++i) {
      if (s.label[i]) rejected += s.score[i] < p.threshold;
      if (!s.label[i]) accepted += s.score[i] >= p.threshold;
    }
    EXPECT_DOUBLE_EQ(p.fnmr, rejected / 300.0) << k;
    EXPECT_LE(accepted / 3000.0, p.fmr * (1 + 1e-12)) << k;
  }
}

TEST(Det, NormalDeviateInvertsTheNormalCdf) {
  for (double p : {1e-300, 1e-12, 1e-6, 1e-3, 0.02, 0.0243, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97576, 0.999,
                   1 - 1e-9}) {
    const double x = normalDeviate(p);
    const double back = 0.5 * std::erfc(-x / std::sqrt(2.0));
    EXPECT_NEAR(back / p, 1.0, 1e-12) << p;
  }
  EXPECT_NEAR(normalDeviate(0.5), 0.0, 1e-15);
  EXPECT_NEAR(normalDeviate(0.2), -normalDeviate(0.8), 1e-14);
  EXPECT_TRUE(std::isinf(normalDeviate(0.0)) && normalDeviate(0.0) < 0);
  EXPECT_TRUE(std::isinf(normalDeviate(1.0)) && normalDeviate(1.0) > 0);
}

TEST(Det, ThresholdAtFarIsTheLowestThatKeepsTheFar) {
  for (double step : {0.0, 0.1}) {
    const auto s = normalPairScores(500, 20000, 1.0, 11, step);
    int64_t impostors = 0;
    for (auto l : s.label) impostors += !l;
    for (double far : {1e-4, 1.5e-4, 1e-3, 0.0123, 0.5, 1.0}) {
      const double t = thresholdAtFar(s.score.data(), s.label.data(), s.score.size(), far);
      auto acceptedAt = [&](double th) {
        int64_t a = 0;
        for (size_t i = 0; i < s.score.size(); ++i) a += !s.label[i] && s.score[i] >= th;
        return a;
      };
      const int64_t allowed = static_cast<int64_t>(std::floor(far * impostors + 1e-9));
      EXPECT_LE(acceptedAt(t), allowed) << far;
      // The next score below accepts too many (or there is none: every impostor accepted).
      float below = -std::numeric_limits<float>::infinity();
      for (size_t i = 0; i < s.score.size(); ++i)
        if (s.score[i] < t) below = std::max(below, s.score[i]);
      if (acceptedAt(t) < impostors) {
        EXPECT_GT(acceptedAt(below), allowed) << far;
      }
    }
  }
  const std::vector<float> sc = {0.1f, 0.2f};
  const std::vector<uint8_t> genuine_only = {1, 1};
  EXPECT_NE(errorMessageOf([&] {
              thresholdAtFar(sc.data(), genuine_only.data(), 2, 0.1);
            }).find("no impostor"),
            std::string::npos);
  const std::vector<uint8_t> mixed = {1, 0};
  EXPECT_NE(errorMessageOf([&] { thresholdAtFar(sc.data(), mixed.data(), 2, 0.0); }).find("FAR"),
            std::string::npos);
  EXPECT_NE(errorMessageOf([&] { thresholdAtFar(sc.data(), mixed.data(), 2, 1.5); }).find("FAR"),
            std::string::npos);
}

TEST(Det, HistogramCountsEveryScoreInItsBin) {
  const auto s = normalPairScores(200, 1800, 2.0, 5);
  const auto h = scoreHistogram(s.score.data(), s.label.data(), s.score.size(), 17, 1e-2);
  ASSERT_EQ(h.genuine.size(), 17u);
  EXPECT_EQ(h.lo, *std::min_element(s.score.begin(), s.score.end()));
  EXPECT_EQ(h.hi, *std::max_element(s.score.begin(), s.score.end()));
  EXPECT_EQ(h.threshold, thresholdAtFar(s.score.data(), s.label.data(), s.score.size(), 1e-2));
  EXPECT_EQ(h.far, 1e-2);
  std::vector<int64_t> g(17, 0), im(17, 0);
  for (size_t i = 0; i < s.score.size(); ++i) {
    int b = 0;
    while (b + 1 < 17 && s.score[i] >= h.lo + (h.hi - h.lo) * (b + 1) / 17) ++b;
    ++(s.label[i] ? g : im)[b];
  }
  EXPECT_EQ(h.genuine, g);
  EXPECT_EQ(h.impostor, im);
}

TEST(Failures, FoldDecisionsReproduceOneMinusAccuracy) {
  torch::manual_seed(3);
  for (int n : {1000, 1003}) {
    const auto a = torch::nn::functional::normalize(
        torch::randn({n, 8}), torch::nn::functional::NormalizeFuncOptions().dim(1));
    std::vector<uint8_t> same(n);
    auto b = torch::nn::functional::normalize(torch::randn({n, 8}),
                                              torch::nn::functional::NormalizeFuncOptions().dim(1));
    for (int i = 0; i < n; ++i) {
      same[i] = i % 3 != 0;
      if (same[i])
        b[i] = torch::nn::functional::normalize(
            a[i] + 0.9 * torch::randn({8}), torch::nn::functional::NormalizeFuncOptions().dim(0));
    }
    const auto r = foldAccuracy(a, b, same);
    ASSERT_EQ(r.fold.size(), static_cast<size_t>(n));
    ASSERT_EQ(r.fold_thresholds.size(), 10u);
    // KFold(10, shuffle=False): contiguous, the first n % 10 folds one larger.
    std::vector<int> size(10, 0);
    for (int i = 0; i < n; ++i) {
      ++size[r.fold[i]];
      if (i) {
        EXPECT_LE(r.fold[i - 1], r.fold[i]);
      }
    }
    for (int f = 0; f < 10; ++f) EXPECT_EQ(size[f], n / 10 + (f < n % 10)) << f;
    PairScores s;
    s.set = "val";
    s.score.assign(n, 0.f);
    s.label = same;
    s.dist = r.dist;
    s.fold = r.fold;
    s.fold_thresholds = r.fold_thresholds;
    const auto d = decide(s, {true, 0});
    EXPECT_TRUE(std::isnan(d.threshold));
    std::vector<double> wrong(10, 0);
    for (int i = 0; i < n; ++i) wrong[r.fold[i]] += d.accepted[i] != same[i];
    double err = 0;
    for (int f = 0; f < 10; ++f) err += wrong[f] / size[f] / 10;
    EXPECT_NEAR(err, 1 - r.accuracy, 1e-12) << n;
    EXPECT_GT(r.accuracy, 0.6);
    EXPECT_LT(r.accuracy, 1.0);
  }
}

TEST(Failures, ListsAgreeWithAFullSortOfEveryWrongDecision) {
  const auto x = normalPairScores(400, 3600, 2.0, 21);
  const auto y = normalPairScores(400, 3600, 1.5, 22);
  PairScores a, b;
  a.set = b.set = "val";
  a.checkpoint = "a.ckpt", b.checkpoint = "b.ckpt";
  a.score = x.score, a.label = x.label;
  b.score = y.score, b.label = x.label;  // same labels (normalPairScores places them alike)
  ASSERT_EQ(x.label, y.label);
  const OperatingPoint op{false, 1e-2};
  const double ta = thresholdAtFar(a.score.data(), a.label.data(), a.size(), op.far);
  const double tb = thresholdAtFar(b.score.data(), b.label.data(), b.size(), op.far);
  // One model: every wrong decision, by margin then pair.
  struct Ref {
    double margin;
    int64_t pair;
  };
  auto sorted = [](std::vector<Ref> v, size_t k) {
    std::sort(v.begin(), v.end(), [](const Ref& p, const Ref& q) {
      return p.margin != q.margin ? p.margin > q.margin : p.pair < q.pair;
    });
    v.resize(std::min(v.size(), k));
    return v;
  };
  std::vector<Ref> fa, fr, only_a, only_b;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool acc_a = a.score[i] >= ta, acc_b = b.score[i] >= tb, g = a.label[i];
    const double ma = g ? ta - a.score[i] : a.score[i] - ta;
    const double mb = g ? tb - b.score[i] : b.score[i] - tb;
    if (acc_a != g) (g ? fr : fa).push_back({ma, static_cast<int64_t>(i)});
    if (acc_a == g && acc_b != g) only_a.push_back({mb, static_cast<int64_t>(i)});
    if (acc_a != g && acc_b == g) only_b.push_back({ma, static_cast<int64_t>(i)});
  }
  ASSERT_GT(fa.size(), 7u);
  ASSERT_GT(fr.size(), 7u);
  ASSERT_GT(only_a.size(), 7u);
  ASSERT_GT(only_b.size(), 7u);
  const auto one = listFailures({&a}, op, 7);
  EXPECT_EQ(one.thresholds, std::vector<double>{ta});
  EXPECT_EQ(one.false_accepts, static_cast<int64_t>(fa.size()));
  EXPECT_EQ(one.false_rejects, static_cast<int64_t>(fr.size()));
  std::vector<Ref> want = sorted(fa, 7), more = sorted(fr, 7);
  want.insert(want.end(), more.begin(), more.end());
  ASSERT_EQ(one.rows.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_EQ(one.rows[k].pair, want[k].pair) << k;
    EXPECT_DOUBLE_EQ(one.rows[k].margin, want[k].margin) << k;
    EXPECT_GE(one.rows[k].margin, 0) << k;
    EXPECT_EQ(one.rows[k].kind, k < 7 ? FailureKind::kFalseAccept : FailureKind::kFalseReject);
    EXPECT_EQ(one.rows[k].scores, std::vector<float>{a.score[want[k].pair]});
  }
  const auto two = listFailures({&a, &b}, op, 5);
  EXPECT_EQ(two.only_first_right, static_cast<int64_t>(only_a.size()));
  EXPECT_EQ(two.only_second_right, static_cast<int64_t>(only_b.size()));
  EXPECT_EQ(two.false_accepts, static_cast<int64_t>(fa.size()));
  want = sorted(only_a, 5), more = sorted(only_b, 5);
  want.insert(want.end(), more.begin(), more.end());
  ASSERT_EQ(two.rows.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    const auto& r = two.rows[k];
    EXPECT_EQ(r.pair, want[k].pair) << k;
    EXPECT_DOUBLE_EQ(r.margin, want[k].margin) << k;
    EXPECT_EQ(r.kind, k < 5 ? FailureKind::kOnlyFirstRight : FailureKind::kOnlySecondRight);
    const bool g = a.label[r.pair];
    EXPECT_EQ(r.accepted[0] == g, k < 5) << k;
    EXPECT_EQ(r.accepted[1] == g, k >= 5) << k;
    EXPECT_EQ(r.scores[1], b.score[r.pair]);
  }
  EXPECT_STREQ(failureKindName(FailureKind::kOnlyFirstRight), "A right, B wrong");
}

TEST(Failures, AHandMadeSetAndItsErrors) {
  // Ten pairs: impostors 0..4, genuine 5..9. At FAR 0.2 one impostor may pass: threshold just
  // above the second highest impostor (0.5), so pair 1 (0.9) is a false accept; pair 7 (0.3) and
  // pair 8 (0.5) are false rejects, 7 by the larger margin.
  PairScores s;
  s.set = "hand";
  s.checkpoint = "m.ckpt";
  s.score = {0.1f, 0.9f, 0.5f, 0.2f, -0.3f, 0.8f, 0.95f, 0.3f, 0.5f, 0.7f};
  s.label = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
  const auto f = listFailures({&s}, {false, 0.2}, 10);
  ASSERT_EQ(f.rows.size(), 3u);
  EXPECT_EQ(f.rows[0].pair, 1);
  EXPECT_EQ(f.rows[0].kind, FailureKind::kFalseAccept);
  EXPECT_EQ(f.rows[1].pair, 7);
  EXPECT_EQ(f.rows[2].pair, 8);
  EXPECT_GT(f.rows[1].margin, f.rows[2].margin);
  EXPECT_GT(f.thresholds[0], 0.5);
  EXPECT_LT(f.thresholds[0], 0.5 + 1e-6);
  // The 10-fold operating point needs a pair set's folds.
  EXPECT_NE(errorMessageOf([&] { decide(s, {true, 0}); }).find("hand"), std::string::npos);
  s.is_ijb = true;
  EXPECT_NE(errorMessageOf([&] { decide(s, {true, 0}); }).find("pair sets"), std::string::npos);
  // Another set's scores.
  PairScores other = s;
  other.checkpoint = "other.ckpt";
  other.label[3] = 1;
  EXPECT_NE(errorMessageOf([&] {
              listFailures({&s, &other}, {false, 0.2}, 3);
            }).find("other.ckpt"),
            std::string::npos);
  other.label.pop_back(), other.score.pop_back();
  const std::string e = errorMessageOf([&] { checkSameSet(other, s.label, "x.csv"); });
  EXPECT_NE(e.find("x.csv"), std::string::npos) << e;
  EXPECT_NE(e.find("9 pairs"), std::string::npos) << e;
}

TEST(PairScoresFile, BinaryAndCsvRoundTrips) {
  const std::string dir = detTempDir("roundtrip");
  for (bool ijb : {false, true}) {
    const auto s = randomPairScores(1234, ijb, ijb ? 5 : 6);
    const std::string bin = dir + (ijb ? "/ijb.scores" : "/val.scores");
    writePairScores(bin, s, "key-1");
    const auto back = readPairScores(bin, "key-1");
    ASSERT_TRUE(back.has_value());
    expectSameScores(*back, s);
    EXPECT_EQ(back->set, s.set);
    EXPECT_EQ(back->set_path, s.set_path);
    EXPECT_EQ(back->checkpoint, s.checkpoint);
    EXPECT_FALSE(readPairScores(bin, "key-2").has_value());  // the checkpoint or set changed
    EXPECT_TRUE(readPairScores(bin).has_value());            // no key: any
    const std::string csv = dir + (ijb ? "/ijb.csv" : "/val.csv");
    writePairsCsv(csv, s);
    const auto c = readPairsCsv(csv);
    expectSameScores(c, s);
  }
}

TEST(PairScoresFile, CorruptCutAndForeignFilesAreNamed) {
  const std::string dir = detTempDir("corrupt");
  const auto s = randomPairScores(500, false, 9);
  const std::string good = dir + "/val.scores";
  writePairScores(good, s, "k");
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto writeBytes = [&](const std::string& name, const std::string& b) {
    std::ofstream(dir + "/" + name, std::ios::binary) << b;
    return dir + "/" + name;
  };
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  const std::string f1 = writeBytes("flipped.scores", flipped);
  std::string e = errorMessageOf([&] { readPairScores(f1, "k"); });
  EXPECT_NE(e.find(f1), std::string::npos) << e;
  EXPECT_NE(e.find("checksum"), std::string::npos) << e;
  const std::string f2 = writeBytes("cut.scores", bytes.substr(0, bytes.size() - 100));
  e = errorMessageOf([&] { readPairScores(f2, "k"); });
  EXPECT_NE(e.find(f2), std::string::npos) << e;
  EXPECT_NE(e.find("cut short"), std::string::npos) << e;
  const std::string f3 = writeBytes("short.scores", bytes.substr(0, 20));
  e = errorMessageOf([&] { readPairScores(f3, "k"); });
  EXPECT_NE(e.find(f3), std::string::npos) << e;
  const std::string f4 = writeBytes("foreign.scores", "pair,score,label\n0,0.5,1\n");
  e = errorMessageOf([&] { readPairScores(f4, "k"); });
  EXPECT_NE(e.find(f4), std::string::npos) << e;
  EXPECT_NE(e.find("not a per-pair scores file"), std::string::npos) << e;
  // CSV: a bad line is named by file and line.
  const std::string c1 = writeBytes("bad.csv", "pair,score,label\n0,0.5,1\n1,zero,0\n");
  e = errorMessageOf([&] { readPairsCsv(c1); });
  EXPECT_NE(e.find(c1 + " line 3"), std::string::npos) << e;
  const std::string c2 = writeBytes("label.csv", "pair,score,label\n0,0.5,2\n");
  e = errorMessageOf([&] { readPairsCsv(c2); });
  EXPECT_NE(e.find(c2 + " line 2"), std::string::npos) << e;
  const std::string c3 = writeBytes("head.csv", "a,b\n");
  EXPECT_NE(errorMessageOf([&] { readPairsCsv(c3); }).find(c3 + " line 1"), std::string::npos);
  // A pairs file of another set: count or labels differ.
  std::vector<uint8_t> labels = s.label;
  labels[17] ^= 1;
  e = errorMessageOf([&] { checkSameSet(s, labels, "other.csv"); });
  EXPECT_NE(e.find("other.csv: pair 17"), std::string::npos) << e;
  labels.push_back(1);
  e = errorMessageOf([&] { checkSameSet(s, labels, "other.csv"); });
  EXPECT_NE(e.find("other.csv"), std::string::npos) << e;
  EXPECT_NE(e.find("501"), std::string::npos) << e;
}

TEST(PairScoresFile, WorkspaceLayoutAndKey) {
  const std::string dir = detTempDir("layout");
  const msconv::workspace::Workspace ws(dir + "/ws");
  fs::create_directories(dir + "/ws/runs/a");
  std::ofstream(dir + "/ws/runs/a/best.ckpt") << "x";
  std::ofstream(dir + "/loose.ckpt") << "y";
  std::ofstream(dir + "/val.bin") << "z";
  EXPECT_EQ(fs::path(pairScoresFile(ws, dir + "/ws/runs/a/best.ckpt", "val")),
            fs::path(ws.runDir("a")) / "scores" / "best.val.scores");
  const std::string loose = pairScoresFile(ws, dir + "/loose.ckpt", "val");
  EXPECT_EQ(fs::path(loose).parent_path().parent_path(), fs::path(dir + "/ws/scores"));
  EXPECT_EQ(fs::path(loose).filename(), "val.scores");
  EXPECT_EQ(fs::path(loose).parent_path().filename().string().rfind("loose-", 0), 0u);
  // The key follows the checkpoint's and the set's contents (size, mtime) and the options.
  const std::string k0 = pairScoresKey(dir + "/loose.ckpt", dir + "/val.bin");
  EXPECT_EQ(k0, pairScoresKey(dir + "/loose.ckpt", dir + "/val.bin"));
  EXPECT_NE(k0, pairScoresKey(dir + "/loose.ckpt", dir + "/val.bin", "ijb_set=ijbb"));
  std::ofstream(dir + "/loose.ckpt") << "a longer checkpoint";
  EXPECT_NE(k0, pairScoresKey(dir + "/loose.ckpt", dir + "/val.bin"));
}
