// msconv::stats against SciPy 1.10.1 and numpy (tests/python/make_stats_fixtures.py writes their
// answers): summaries and t-intervals, the t distribution's cdf and quantile, the paired t-test,
// Wilcoxon's signed-rank test on both of its paths, Holm, McNemar's exact test and numpy's
// percentile; then properties of the paired bootstrap and the edge cases the header documents.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>

#include "msconv/stats/stats.h"

#ifndef MSCONV_STATS_FIXTURES_DIR
#define MSCONV_STATS_FIXTURES_DIR "."
#endif

// (In msconv::stats, not the global namespace: a unity build shares one anonymous namespace.)
namespace msconv::stats {
namespace {

constexpr double kTol = 1e-9;  // absolute for probabilities, relative for the rest

const nlohmann::json& statsFixture() {
  static const nlohmann::json j = [] {
    const char* env = std::getenv("MSCONV_STATS_FIXTURES");
    const std::string path = std::string(env ? env : MSCONV_STATS_FIXTURES_DIR) + "/stats.json";
    std::ifstream f(path);
    if (!f)
      throw std::runtime_error("missing fixture " + path +
                               " (tests/python/make_stats_fixtures.py writes it)");
    return nlohmann::json::parse(f);
  }();
  return j;
}

// A number as the fixture writes it: non-finite ones as "nan", "inf", "-inf".
double num(const nlohmann::json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "nan") return NaN;
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    throw std::runtime_error("not a number: " + s);
  }
  return v.get<double>();
}

std::vector<double> nums(const nlohmann::json& v) {
  std::vector<double> out;
  for (const auto& e : v) out.push_back(num(e));
  return out;
}

// The largest deviations seen, printed by each test (for the record, beside the assertions).
struct Worst {
  const char* what;
  double abs = 0, rel = 0;
  void see(double x, double ref) {
    if (!std::isfinite(x) || !std::isfinite(ref)) return;
    abs = std::max(abs, std::fabs(x - ref));
    if (ref != 0) rel = std::max(rel, std::fabs(x - ref) / std::fabs(ref));
  }
  ~Worst() { std::printf("[ stats    ] %s: max |dev| %.3g, max rel dev %.3g\n", what, abs, rel); }
};

// Equal where both are NaN or the same infinity.
::testing::AssertionResult same(double x, double ref, double tol, bool relative) {
  if (std::isnan(ref) || std::isnan(x)) {
    if (std::isnan(ref) && std::isnan(x)) return ::testing::AssertionSuccess();
  } else if (std::isinf(ref) || std::isinf(x)) {
    if (x == ref) return ::testing::AssertionSuccess();
  } else if (std::fabs(x - ref) <= tol * (relative ? std::fabs(ref) : 1.0)) {
    return ::testing::AssertionSuccess();
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "%.17g against SciPy's %.17g (%s tolerance %g)", x, ref,
                relative ? "relative" : "absolute", tol);
  return ::testing::AssertionFailure() << buf;
}
::testing::AssertionResult rel(double x, double ref, double tol = kTol) {
  return same(x, ref, tol, true);
}
::testing::AssertionResult prob(double x, double ref) {
  return same(x, ref, kTol, false);
}

// An interval's bound against SciPy's own t.interval, whose quantile (t.ppf) is good to ~5e-9
// relative only: to 1e-8 of the bound's magnitude plus the half-width.
::testing::AssertionResult bound(double x, double ref, double lo, double hi) {
  if (!std::isfinite(ref)) return same(x, ref, 0, false);
  return same(x, ref, 1e-8 * (std::fabs(ref) + 0.5 * (hi - lo)), false);
}

// --- Against SciPy -------------------------------------------------------------------------

TEST(StatsReference, SummaryEqualsNumpyAndTInterval) {
  Worst w{"summary mean/std/interval"};
  int cases = 0;
  for (const auto& c : statsFixture()["summary"]) {
    const auto x = nums(c["x"]);
    const Summary s = summarise(x, c["confidence"].get<double>());
    SCOPED_TRACE("n = " + std::to_string(x.size()));
    EXPECT_EQ(s.n, static_cast<int>(x.size()));
    EXPECT_TRUE(rel(s.mean, num(c["mean"])));
    EXPECT_TRUE(rel(s.std, num(c["std"])));
    const double lo = num(c["ci_lo"]), hi = num(c["ci_hi"]);
    EXPECT_TRUE(bound(s.ci_lo, lo, lo, hi));
    EXPECT_TRUE(bound(s.ci_hi, hi, lo, hi));
    EXPECT_TRUE(rel(s.ci_lo, num(c["ci_lo_polished"])));
    EXPECT_TRUE(rel(s.ci_hi, num(c["ci_hi_polished"])));
    w.see(s.mean, num(c["mean"]));
    w.see(s.std, num(c["std"]));
    w.see(s.ci_lo, num(c["ci_lo_polished"]));
    w.see(s.ci_hi, num(c["ci_hi_polished"]));
    ++cases;
  }
  EXPECT_GE(cases, 12);
}

TEST(StatsReference, StudentTCdfEqualsScipy) {
  Worst w{"t.cdf"};
  int cases = 0;
  for (const auto& c : statsFixture()["t_cdf"]) {
    const double t = num(c[0]), df = num(c[1]), ref = num(c[2]);
    const double p = studentTCdf(t, df);
    SCOPED_TRACE("t = " + std::to_string(t) + ", df = " + std::to_string(df));
    EXPECT_TRUE(prob(p, ref));
    // SciPy's tails are accurate to ~1e-13 (checked against mpmath), so relative agreement too,
    // down to its smallest normal values (~1e-289; for df = inf and t = -38 SciPy's ndtr gives 0
    // where the true 2.9e-316 is subnormal, and so does not this).
    if (ref >= 1e-300) {
      EXPECT_TRUE(rel(p, ref));
    }
    w.see(p, ref);
    ++cases;
  }
  EXPECT_GE(cases, 400);
}

TEST(StatsReference, StudentTQuantileEqualsScipy) {
  Worst w_raw{"t.ppf (SciPy's own)"}, w{"t.ppf (polished on t.cdf)"};
  int cases = 0;
  for (const auto& c : statsFixture()["t_ppf"]) {
    const double p = num(c[0]), df = num(c[1]), raw = num(c[2]), polished = num(c[3]);
    const double q = studentTQuantile(p, df);
    SCOPED_TRACE("p = " + std::to_string(p) + ", df = " + std::to_string(df));
    if (p == 0.5) {
      EXPECT_EQ(q, 0.0);  // SciPy: ~1e-16 either side of 0
      EXPECT_LT(std::fabs(raw), 1e-15);
      continue;
    }
    // SciPy's t.ppf itself (cdflib's search) stops at ~5e-9 relative for some df; the fixture's
    // polished value (Newton steps on SciPy's t.cdf / t.sf) is good to ~1e-13.
    EXPECT_TRUE(rel(q, raw, 1e-8));
    EXPECT_TRUE(rel(q, polished));
    w_raw.see(q, raw);
    w.see(q, polished);
    // Round trip through our cdf, on the side where the probability is the small one.
    if (p < 0.5) {
      EXPECT_TRUE(rel(studentTCdf(q, df), p, 1e-12));
    }
    ++cases;
  }
  EXPECT_GE(cases, 450);
}

TEST(StatsReference, PairedTEqualsTtestRel) {
  Worst w{"ttest_rel diff/t/interval"}, wp{"ttest_rel p"};
  int cases = 0;
  for (const auto& c : statsFixture()["paired_t"]) {
    const auto a = nums(c["a"]), b = nums(c["b"]);
    const PairedTest r = pairedT(a, b, c["confidence"].get<double>());
    SCOPED_TRACE("case " + std::to_string(cases) + ", n = " + std::to_string(a.size()));
    EXPECT_EQ(r.n, static_cast<int>(a.size()));
    EXPECT_TRUE(rel(r.diff, num(c["diff"])));
    EXPECT_TRUE(rel(r.t, num(c["t"])));
    EXPECT_TRUE(prob(r.p, num(c["p"])));
    const double lo = num(c["ci_lo"]), hi = num(c["ci_hi"]);
    EXPECT_TRUE(bound(r.ci_lo, lo, lo, hi));
    EXPECT_TRUE(bound(r.ci_hi, hi, lo, hi));
    EXPECT_TRUE(rel(r.ci_lo, num(c["ci_lo_polished"])));
    EXPECT_TRUE(rel(r.ci_hi, num(c["ci_hi_polished"])));
    w.see(r.diff, num(c["diff"]));
    w.see(r.t, num(c["t"]));
    w.see(r.ci_lo, num(c["ci_lo_polished"]));
    w.see(r.ci_hi, num(c["ci_hi_polished"]));
    wp.see(r.p, num(c["p"]));
    ++cases;
  }
  EXPECT_GE(cases, 18);
}

TEST(StatsReference, WilcoxonEqualsScipyOnBothPaths) {
  Worst w{"wilcoxon p"}, wz{"wilcoxon z"};
  int exact = 0, approx = 0;
  for (const auto& c : statsFixture()["wilcoxon"]) {
    const auto a = nums(c["a"]), b = nums(c["b"]);
    const Wilcoxon r = wilcoxonSignedRank(a, b);
    SCOPED_TRACE(c["kind"].get<std::string>() + ", n = " + std::to_string(a.size()));
    EXPECT_EQ(r.exact, c["exact"].get<bool>());
    EXPECT_EQ(r.n, c["n"].get<int>());
    EXPECT_EQ(r.zeros, c["zeros"].get<int>());
    EXPECT_EQ(r.statistic, num(c["statistic"]));  // sums of half-integers: exact
    EXPECT_TRUE(prob(r.p, num(c["p"])));
    EXPECT_TRUE(rel(r.p, num(c["p"])));
    w.see(r.p, num(c["p"]));
    if (c["z"].is_null()) {
      EXPECT_TRUE(std::isnan(r.z));
      ++exact;
    } else {
      EXPECT_TRUE(rel(r.z, num(c["z"])));
      wz.see(r.z, num(c["z"]));
      ++approx;
    }
  }
  EXPECT_GE(exact, 10);
  EXPECT_GE(approx, 5);
}

TEST(StatsReference, HolmEqualsStatsmodelsDefinition) {
  Worst w{"holm"};
  for (const auto& c : statsFixture()["holm"]) {
    const auto p = nums(c["p"]), ref = nums(c["adjusted"]);
    const auto adj = holm(p);
    ASSERT_EQ(adj.size(), ref.size());
    for (size_t i = 0; i < adj.size(); ++i) {
      EXPECT_TRUE(prob(adj[i], ref[i])) << i;
      w.see(adj[i], ref[i]);
    }
  }
}

TEST(StatsReference, McNemarEqualsBinomtest) {
  Worst w{"mcnemar (binomtest)"};
  for (const auto& c : statsFixture()["mcnemar"]) {
    const int64_t b = c["b"], cc = c["c"];
    const McNemar r = mcnemarExact(b, cc);
    SCOPED_TRACE(std::to_string(b) + " / " + std::to_string(cc));
    EXPECT_EQ(r.b, b);
    EXPECT_EQ(r.c, cc);
    EXPECT_TRUE(prob(r.p, num(c["p"])));
    EXPECT_TRUE(rel(r.p, num(c["p"])));
    w.see(r.p, num(c["p"]));
  }
}

TEST(StatsReference, PercentileIntervalEqualsNumpy) {
  Worst w{"np.percentile"};
  for (const auto& c : statsFixture()["percentile"]) {
    const auto x = nums(c["x"]);
    const Interval r = percentileInterval(x, 0.25, c["confidence"].get<double>());
    SCOPED_TRACE("n = " + std::to_string(x.size()));
    EXPECT_EQ(r.estimate, 0.25);
    EXPECT_TRUE(rel(r.lo, num(c["lo"])));
    EXPECT_TRUE(rel(r.hi, num(c["hi"])));
    w.see(r.lo, num(c["lo"]));
    w.see(r.hi, num(c["hi"]));
  }
}

// --- Properties and edge cases -------------------------------------------------------------

// Standard normal draws from mt19937_64 (Box-Muller on 53-bit uniforms): the same everywhere.
std::vector<double> normals(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  std::vector<double> out;
  while (out.size() < n) {
    const double r = std::sqrt(-2 * std::log(uniform())), a = 6.283185307179586 * uniform();
    out.push_back(r * std::cos(a));
    if (out.size() < n) out.push_back(r * std::sin(a));
  }
  return out;
}

TEST(StatsBootstrap, DeterministicForASeedAndDifferentForAnother) {
  const auto x = normals(500, 3);
  auto mean = [&](const std::vector<uint32_t>& idx) {
    double s = 0;
    for (uint32_t i : idx) s += x[i];
    return s / static_cast<double>(idx.size());
  };
  const Interval a = pairedBootstrap(x.size(), mean, 300, 11);
  const Interval b = pairedBootstrap(x.size(), mean, 300, 11);
  const Interval c = pairedBootstrap(x.size(), mean, 300, 12);
  EXPECT_EQ(a.estimate, b.estimate);
  EXPECT_EQ(a.lo, b.lo);
  EXPECT_EQ(a.hi, b.hi);
  EXPECT_EQ(a.estimate, c.estimate);  // the full sample either way
  EXPECT_TRUE(a.lo != c.lo || a.hi != c.hi);
  EXPECT_LT(a.lo, a.estimate);
  EXPECT_GT(a.hi, a.estimate);
}

TEST(StatsBootstrap, IndicesAreTheSameOnEveryPlatform) {
  // mt19937_64 is specified by the standard (its 10000th output from the default seed), and
  // uniformIndex by this library: these are the indices every build draws.
  std::mt19937_64 standard;
  standard.discard(9999);
  EXPECT_EQ(standard(), 9981545732273789042ull);
  std::mt19937_64 rng(42);
  std::vector<uint64_t> drawn;
  for (int i = 0; i < 6; ++i) drawn.push_back(uniformIndex(rng, 1000));
  EXPECT_EQ(drawn, (std::vector<uint64_t>{406, 824, 450, 662, 381, 428}));
  std::mt19937_64 r1(5);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(uniformIndex(r1, 1), 0u);
  // A bound just above 2^63: about half the words are rejected, every value stays below it.
  const uint64_t big = (1ull << 63) + 12345;
  for (int i = 0; i < 100; ++i) EXPECT_LT(uniformIndex(r1, big), big);
}

TEST(StatsBootstrap, MeanDifferenceIntervalMatchesNormalTheory) {
  // 2,000 verification pairs scored by two models: a shared per-pair difficulty, model A better
  // by 0.3 on average.
  constexpr size_t n = 2000;
  constexpr double truth = 0.3;
  const auto u = normals(n, 101), ea = normals(n, 102), eb = normals(n, 103);
  std::vector<double> a(n), b(n);
  for (size_t i = 0; i < n; ++i) {
    a[i] = u[i] + truth + 0.5 * ea[i];
    b[i] = u[i] + 0.5 * eb[i];
  }
  auto diff = [&](const std::vector<uint32_t>& idx) {
    double s = 0;
    for (uint32_t i : idx) s += a[i] - b[i];
    return s / static_cast<double>(idx.size());
  };
  const Interval boot = pairedBootstrap(n, diff, 2000, 2024);
  const PairedTest t = pairedT(a, b);
  EXPECT_DOUBLE_EQ(boot.estimate, t.diff);
  EXPECT_LT(boot.lo, truth);
  EXPECT_GT(boot.hi, truth);
  const double ratio = (boot.hi - boot.lo) / (t.ci_hi - t.ci_lo);
  std::printf("[ stats    ] bootstrap width / t-interval width: %.4f\n", ratio);
  EXPECT_NEAR(ratio, 1.0, 0.15);
  EXPECT_LT(t.p, 1e-10);
}

TEST(StatsEdges, SizeMismatchAndBadArgumentsThrow) {
  EXPECT_THROW(pairedT({1, 2, 3}, {1, 2}), std::invalid_argument);
  EXPECT_THROW(wilcoxonSignedRank({1, 2}, {1, 2, 3}), std::invalid_argument);
  EXPECT_THROW(mcnemarExact(std::vector<bool>{true, false}, std::vector<bool>{true}),
               std::invalid_argument);
  EXPECT_THROW(mcnemarExact(-1, 3), std::invalid_argument);
  EXPECT_THROW(summarise({1, 2}, 1.5), std::invalid_argument);
  EXPECT_THROW(pairedT({1, 2}, {0, 0}, -0.1), std::invalid_argument);
  EXPECT_THROW(percentileInterval({1, 2}, 1, NaN), std::invalid_argument);
  auto stat = [](const std::vector<uint32_t>&) { return 0.0; };
  EXPECT_THROW(pairedBootstrap(0, stat, 10, 1), std::invalid_argument);
  EXPECT_THROW(pairedBootstrap(10, stat, 0, 1), std::invalid_argument);
}

TEST(StatsEdges, SmallAndDegenerateSamples) {
  EXPECT_TRUE(std::isnan(summarise({}).mean));
  const Summary one = summarise({0.5});
  EXPECT_EQ(one.n, 1);
  EXPECT_EQ(one.mean, 0.5);
  EXPECT_TRUE(std::isnan(one.std) && std::isnan(one.ci_lo) && std::isnan(one.ci_hi));
  const Summary nan = summarise({0.5, NaN, 0.7});
  EXPECT_TRUE(std::isnan(nan.mean) && std::isnan(nan.ci_lo));
  // A constant 0.1 (whose sum rounds): std exactly 0, the interval [0.1, 0.1].
  const Summary flat = summarise({0.1, 0.1, 0.1});
  EXPECT_EQ(flat.std, 0.0);
  EXPECT_EQ(flat.ci_lo, 0.1);
  EXPECT_EQ(flat.ci_hi, 0.1);

  const PairedTest p0 = pairedT({}, {});
  EXPECT_EQ(p0.n, 0);
  EXPECT_TRUE(std::isnan(p0.diff) && std::isnan(p0.t) && std::isnan(p0.p));
  const PairedTest p1 = pairedT({0.9}, {0.8});
  EXPECT_NEAR(p1.diff, 0.1, 1e-15);
  EXPECT_TRUE(std::isnan(p1.t) && std::isnan(p1.p) && std::isnan(p1.ci_lo));
  const PairedTest same = pairedT({0.9, 0.8, 0.7}, {0.9, 0.8, 0.7});
  EXPECT_TRUE(std::isnan(same.t) && std::isnan(same.p));
  EXPECT_EQ(same.ci_lo, 0.0);
  EXPECT_EQ(same.ci_hi, 0.0);
  const PairedTest offset = pairedT({0.3, 0.4, 0.5}, {0.2, 0.3, 0.4});  // differences round apart
  EXPECT_GT(std::fabs(offset.t), 1e10);
  EXPECT_LT(offset.p, 1e-20);

  // Wilcoxon: empty, NaN, every difference zero (SciPy raises; NaN here), a single pair.
  EXPECT_TRUE(std::isnan(wilcoxonSignedRank({}, {}).p));
  EXPECT_TRUE(std::isnan(wilcoxonSignedRank({1, NaN}, {0, 0}).statistic));
  const Wilcoxon zeros = wilcoxonSignedRank({1, 2, 3}, {1, 2, 3});
  EXPECT_TRUE(std::isnan(zeros.statistic) && std::isnan(zeros.p));
  EXPECT_EQ(zeros.zeros, 3);
  const Wilcoxon single = wilcoxonSignedRank({5}, {0});
  EXPECT_TRUE(single.exact);
  EXPECT_EQ(single.statistic, 0.0);
  EXPECT_EQ(single.p, 1.0);

  EXPECT_TRUE(holm({}).empty());
  const auto h = holm({NaN, 0.01, NaN});
  EXPECT_TRUE(std::isnan(h[0]) && std::isnan(h[2]));
  EXPECT_EQ(h[1], 0.01);  // m = 1

  const McNemar m = mcnemarExact(std::vector<bool>{true, true, false, false, true},
                                 std::vector<bool>{false, true, true, false, false});
  EXPECT_EQ(m.b, 2);
  EXPECT_EQ(m.c, 1);
  EXPECT_EQ(mcnemarExact(0, 0).p, 1.0);
  EXPECT_NEAR(mcnemarExact(0, 5).p, 0.0625, 1e-15);

  EXPECT_TRUE(std::isnan(percentileInterval({}, 1).lo));
  EXPECT_TRUE(std::isnan(percentileInterval({1, NaN, 2}, 1).hi));

  EXPECT_EQ(studentTQuantile(0, 3), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(studentTQuantile(1, 3), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(studentTQuantile(1.5, 3)));
  EXPECT_TRUE(std::isnan(studentTQuantile(0.3, 0)));
  EXPECT_TRUE(std::isnan(studentTCdf(1, -2)));
  EXPECT_EQ(studentTCdf(-std::numeric_limits<double>::infinity(), 4), 0.0);
  EXPECT_EQ(studentTCdf(0, 4), 0.5);
}

TEST(StatsEdges, StudentTIsAccurateInTheFarTails) {
  // Closed forms: df = 1 (Cauchy) and df = 2.
  constexpr double kPi = 3.14159265358979323846;
  for (double t : {-1e-8, -0.3, -5.0, -1e3, -1e10, -1e150}) {
    EXPECT_TRUE(rel(studentTCdf(t, 1), std::atan(-1 / t) / kPi, 1e-13)) << t;
    const double r = std::sqrt(2 + t * t);  // df = 2: (1 + t / r) / 2, without its cancellation
    EXPECT_TRUE(rel(studentTCdf(t, 2), 1 / (r * (r - t)), 1e-13)) << t;
  }
  // The quantile at p = 1e-300 for df = 1: -1 / tan(pi p).
  EXPECT_TRUE(rel(studentTQuantile(1e-300, 1), -3.18309886183790671537767526745e299, 1e-13));
  // Symmetry: exact where 1 - p is.
  for (double df : {1.0, 2.5, 30.0, 1e6})
    for (double p : {0.75, 0.975, 0.999})
      EXPECT_EQ(studentTQuantile(p, df), -studentTQuantile(1 - p, df));
}

}  // namespace
}  // namespace msconv::stats
