// Statistics for comparing runs and models: summaries with t-intervals, the Student t
// distribution, the paired t-test, the Wilcoxon signed-rank test, Holm's adjustment, McNemar's
// exact test and the paired bootstrap. Pure math (the standard library only: no LibTorch, no Qt),
// each function computing what the SciPy 1.10.1 / numpy / statsmodels call named beside it computes
// (tests/stats/test_stats.cpp checks them against SciPy's own values, written by
// tests/python/make_stats_fixtures.py), edge cases included unless a comment says otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <vector>

namespace msconv::stats {

inline constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

// n, mean, sample std (ddof 1), and the two-sided t-interval of the mean at `confidence`
// (scipy.stats.t.interval(confidence, n - 1, loc=mean, scale=std / sqrt(n))).
// n == 0: everything NaN; n == 1: std and the interval NaN. A constant vector (std 0): the
// interval is [mean, mean] (SciPy's t.interval answers NaN for scale 0; this is the limit, and
// what scipy.stats.ttest_1samp(x, m).confidence_interval() gives). A NaN in x: NaN throughout.
// Throws std::invalid_argument for a confidence outside [0, 1].
struct Summary {
  int n = 0;
  double mean = NaN, std = NaN, ci_lo = NaN, ci_hi = NaN;
};
Summary summarise(const std::vector<double>& x, double confidence = 0.95);

// Student's t distribution with df > 0 degrees of freedom (df may be fractional or infinite, the
// normal distribution). scipy.stats.t.cdf / t.ppf, to about 1e-13 relative in either tail (the
// smaller of cdf and 1 - cdf is computed, never 1 minus it; checked against mpmath for df from 0.5
// to 1e14). df <= 0 or NaN arguments: NaN. (SciPy's own t.ppf is good to ~5e-9 relative only.)
double studentTCdf(double t, double df);
// The p-quantile: the CDF inverted to full double precision. p outside [0, 1]: NaN; p = 0 or 1:
// -inf or +inf; p = 0.5: 0.
double studentTQuantile(double p, double df);

// Paired t-test of a against b (scipy.stats.ttest_rel(a, b), two-sided): the mean difference
// a - b, its t-interval at `confidence` (ttest_rel(a, b).confidence_interval(confidence)), t and p.
// Edge cases, as SciPy:
//   - n == 0: everything NaN; n == 1: diff = a[0] - b[0], the interval, t and p NaN (df 0);
//   - every difference zero: t and p NaN (0 / 0), the interval [0, 0];
//   - every difference the same nonzero d: t = +-inf, p = 0, the interval [d, d]. (SciPy gives
//     this whenever its floating-point mean reproduces d exactly; for a d like 0.1 whose repeated
//     sum rounds, SciPy gives a huge finite t from the rounding and p ~ 0, where this gives inf.)
//   - a NaN in a or b: t, p, diff and the interval NaN (nan_policy='propagate').
// Throws std::invalid_argument when a and b differ in size or confidence is outside [0, 1].
struct PairedTest {
  int n = 0;
  double diff = NaN, ci_lo = NaN, ci_hi = NaN, t = NaN, p = NaN;
};
PairedTest pairedT(const std::vector<double>& a, const std::vector<double>& b,
                   double confidence = 0.95);

// Wilcoxon signed-rank test on d = a - b, two-sided, as scipy.stats.wilcoxon(a, b) computes it with
// its defaults in SciPy 1.10.1 (zero_method='wilcox', correction=False, method='auto'):
//   - statistic: min(R+, R-), the sums of the (average) ranks of |d| over positive / negative d;
//   - the exact path when n <= 50 and no difference is zero: the null distribution of R+ (the
//     number of subsets of the ranks 1..n per sum, by dynamic programming), p = 2 min(P(R+ <= r),
//     P(R+ >= r)) clipped to 1, and p = 1 when r is the distribution's centre floor(n(n+1)/4).
//     Ties among the |d| do NOT leave this path (SciPy's behaviour): r is R+ truncated to an
//     integer (a tie's half rank dropped), as SciPy's int(r_plus);
//   - otherwise (n > 50, or any zero difference) the normal approximation: zeros dropped, the
//     ranks taken over the remaining count differences, z = (T - count(count+1)/4) / sigma with
//     sigma^2 = (count(count+1)(2count+1) - sum over tie groups t(t^2 - 1) / 2) / 24, no continuity
//     correction, p = 2 (1 - Phi(|z|)).
// Edge cases: n == 0 or a NaN difference: statistic and p NaN (as SciPy). Every difference zero:
// SciPy raises ValueError; this returns statistic and p NaN (with zeros == n) instead of throwing.
// Throws std::invalid_argument when a and b differ in size.
struct Wilcoxon {
  int n = 0;      // the differences ranked (the approximation path drops zeros)
  int zeros = 0;  // zero differences (they force the approximation path)
  double statistic = NaN, p = NaN;
  bool exact = false;  // the exact distribution was used
  double z = NaN;      // the approximation path's z statistic (NaN on the exact path)
};
Wilcoxon wilcoxonSignedRank(const std::vector<double>& a, const std::vector<double>& b);

// Holm's step-down adjusted p-values, as statsmodels' multipletests(p, method='holm') defines
// them: sort ascending, p_(i) * (m - i) for i = 0..m-1, running maximum, capped at 1; returned in
// the input's order. NaN entries are left out of m and returned as NaN.
std::vector<double> holm(const std::vector<double>& p);

// McNemar's exact test on paired binary outcomes (e.g. each verification pair decided correctly
// by model A and by model B): b = A right and B wrong, c = A wrong and B right; p is the two-sided
// exact binomial test of b successes out of b + c at 0.5 (scipy.stats.binomtest(b, b + c,
// 0.5).pvalue: 1 when b == c, else the probability of outcomes no likelier than b (SciPy's
// relative tolerance 1e-7 included), i.e. min(1, 2 P(X <= min(b, c)))). b + c == 0: p = 1 (SciPy
// raises). Throws std::invalid_argument for sizes that differ or negative counts.
struct McNemar {
  int64_t b = 0, c = 0;
  double p = 1;
};
McNemar mcnemarExact(const std::vector<bool>& a_correct, const std::vector<bool>& b_correct);
McNemar mcnemarExact(int64_t b, int64_t c);

// The percentile interval of a bootstrap distribution at `confidence`: its (1 - confidence) / 2
// and (1 + confidence) / 2 quantiles by numpy.percentile's default (linear) definition, with
// `estimate` passed through. An empty distribution or one holding a NaN: lo and hi NaN (numpy
// answers NaN for the latter). Throws std::invalid_argument for a confidence outside [0, 1].
struct Interval {
  double estimate = NaN, lo = NaN, hi = NaN;
};
Interval percentileInterval(std::vector<double> distribution, double estimate,
                            double confidence = 0.95);

// The uniform integer in [0, n) that pairedBootstrap draws from `rng` (n >= 1): a 64-bit word,
// drawn again while it is below 2^64 mod n (the words left make whole blocks of n), then modulo
// n. The same sequence on every platform, unlike std::uniform_int_distribution's.
uint64_t uniformIndex(std::mt19937_64& rng, uint64_t n);  // throws std::invalid_argument for 0

// Paired bootstrap over n items (verification pairs): `statistic` is called once with the indices
// of the full sample (0..n-1) for the estimate, then with `resamples` resamples of n indices drawn
// with replacement (resample after resample, index after index) by uniformIndex from
// std::mt19937_64(seed); the interval is percentileInterval of those values. Deterministic for a
// seed on every platform. Throws std::invalid_argument for n == 0, n > 2^32 - 1, resamples < 1 or
// a confidence outside [0, 1].
Interval pairedBootstrap(size_t n,
                         const std::function<double(const std::vector<uint32_t>&)>& statistic,
                         int resamples, uint64_t seed, double confidence = 0.95);

}  // namespace msconv::stats
