#include "msconv/stats/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace msconv::stats {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr double kLnSqrt2Pi = 0.918938533204672741780329736406;  // ln sqrt(2 pi)
constexpr double kLn2 = 0.693147180559945309417232121458;
constexpr double kSqrt2 = 1.41421356237309504880168872421;

void checkConfidence(double confidence) {
  if (!(confidence >= 0 && confidence <= 1))
    throw std::invalid_argument("confidence must lie in [0, 1], not " + std::to_string(confidence));
}

// --- Gamma and incomplete beta -------------------------------------------------------------
// Stirling's series remainder: lnGamma(z) - ((z - 1/2) ln z - z + ln sqrt(2 pi)), for z >= 10
// (the first omitted term is below 1e-18 there).
double stirlingError(double z) {
  const double r = 1 / z, r2 = r * r;
  return r *
         (1.0 / 12 + r2 * (-1.0 / 360 +
                           r2 * (1.0 / 1260 +
                                 r2 * (-1.0 / 1680 +
                                       r2 * (1.0 / 1188 +
                                             r2 * (-691.0 / 360360 +
                                                   r2 * (1.0 / 156 + r2 * (-3617.0 / 122400))))))));
}

// ln Gamma(z) for z > 0, to about 1e-15 absolute (std::lgamma writes the global signgam: not
// thread-safe).
double lnGamma(double z) {
  if (z >= 10) return (z - 0.5) * std::log(z) - z + kLnSqrt2Pi + stirlingError(z);
  double prod = 1;
  while (z < 10) prod *= z, z += 1;
  return (z - 0.5) * std::log(z) - z + kLnSqrt2Pi + stirlingError(z) - std::log(prod);
}

// ln Gamma(M) - ln Gamma(M + m) for M >= 10, m > 0, without the cancellation of the two.
double lnGammaRatio(double M, double m) {
  return -(M - 0.5) * std::log1p(m / M) - m * std::log(M + m) + m + stirlingError(M) -
         stirlingError(M + m);
}

double lnBeta(double a, double b) {
  const double lo = std::min(a, b), hi = std::max(a, b);
  if (hi < 10) return lnGamma(lo) + lnGamma(hi) - lnGamma(lo + hi);
  if (lo < 10) return lnGamma(lo) + lnGammaRatio(hi, lo);
  // (lo - 1/2) ln(lo / (lo + hi)) + hi ln(hi / (lo + hi)) - ln(hi) / 2 + ln sqrt(2 pi) + deltas
  return -(lo - 0.5) * std::log1p(hi / lo) - hi * std::log1p(lo / hi) - 0.5 * std::log(hi) +
         kLnSqrt2Pi + stirlingError(lo) + stirlingError(hi) - stirlingError(lo + hi);
}

// a ln(x (a + b) / a) given d = x b - y a = x (a + b) - a (y = 1 - x): near x = a / (a + b) from
// log1p, where it is small.
double scaledLog(double a, double b, double d, double lx) {
  const double u = d / a;
  if (std::fabs(u) < 0.5) return a * std::log1p(u);
  return a * (lx + std::log1p(b / a));
}

// ln(x^a y^b / B(a, b)), y = 1 - x, with ln x and ln y given (the callers know them without
// rounding x or 1 - x first). Stirling's form (DiDonato and Morris) where a parameter is large.
double lnFront(double a, double b, double x, double y, double lx, double ly) {
  const double lo = std::min(a, b), hi = std::max(a, b);
  if (hi < 10) return a * lx + b * ly - lnBeta(a, b);
  if (lo < 10) return a * lx + b * ly - lnGamma(lo) - lnGammaRatio(hi, lo);
  const double d = x * b - y * a;
  return scaledLog(a, b, d, lx) + scaledLog(b, a, -d, ly) + 0.5 * std::log(a * b / (a + b)) -
         kLnSqrt2Pi + stirlingError(a + b) - stirlingError(a) - stirlingError(b);
}

// The continued fraction of I_x(a, b) (Numerical Recipes' betacf, modified Lentz), to the last
// bit; it converges fast for x < (a + 1) / (a + b + 2).
double betaContinuedFraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 1000000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) <= kEps) break;
  }
  return h;
}

// I_x(a, 1/2) for a >= 15 and x > 0.7 (ln x given), where the continued fraction's terms cancel
// (x near 1, a large: the t distribution's tail for large df): DiDonato and Morris's asymptotic
// expansion BGRAT (ACM TOMS 18 (1992), eqs. 9 to 9.6), with Q(1/2, u) = erfc(sqrt(u)).
double incompleteBetaLargeAHalf(double a, double lx) {
  constexpr double b = 0.5;
  const double t = a + (b - 1) / 2, u = -t * lx;
  if (!(u > 0)) return 1;
  const double ln_h = b * std::log(u) - u - lnGamma(b);  // h = u^b e^-u / Gamma(b)
  if (ln_h < -700) return 0;                             // I < 1e-300
  const double h = std::exp(ln_h);
  const double prefix = std::exp(ln_h - lnGammaRatio(a, b) - b * std::log(t));
  double j = std::erfc(std::sqrt(u)) / h;  // J_0 / h
  double sum = prefix * j;
  constexpr int kTerms = 30;
  double p[kTerms] = {1}, factorial[2 * kTerms + 2] = {1};
  for (int k = 1; k < 2 * kTerms + 2; ++k) factorial[k] = factorial[k - 1] * k;
  const double lx2 = (lx / 2) * (lx / 2), t4 = 4 * t * t;
  double lxp = 1, b2n = b;
  for (int n = 1; n < kTerms; ++n) {
    p[n] = 0;
    for (int m = 1; m < n; ++m) p[n] += (m * b - n) * p[n - m] / factorial[2 * m + 1];
    p[n] = p[n] / n + (b - 1) / factorial[2 * n + 1];
    j = (b2n * (b2n + 1) * j + (u + b2n + 1) * lxp) / t4;
    lxp *= lx2;
    b2n += 2;
    const double r = prefix * p[n] * j;
    sum += r;
    if (std::fabs(r) <= kEps * std::fabs(sum)) break;
  }
  return sum;
}

// The regularised incomplete beta function I_x(a, b) with y = 1 - x, ln x and ln y given.
double incompleteBeta(double a, double b, double x, double y, double lx, double ly) {
  if (lx == -kInf) return 0;  // (x itself may underflow where ln x does not)
  if (ly == -kInf) return 1;
  if (b == 0.5 && a >= 15 && x > 0.7) return incompleteBetaLargeAHalf(a, lx);
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(b, a, y, x, ly, lx);
  return std::exp(lnFront(a, b, x, y, lx, ly)) * betaContinuedFraction(a, b, x) / a;
}

// --- Student's t ---------------------------------------------------------------------------
// P(0 < T < s) and P(T < -s) for s >= 0, each computed directly where it is the smaller one
// (s < 1 and s >= 1), the other as 1/2 minus it.
double tTail(double s, double df);

double tCentre(double s, double df) {
  if (s >= 1) return 0.5 - tTail(s, df);  // the tail is below 1/4 there, for df >= 1
  if (std::isinf(df)) return 0.5 * std::erf(s / kSqrt2);
  const double s2 = s * s / df;  // z = t^2 / (df + t^2) = s2 / (1 + s2)
  const double lzc = -std::log1p(s2);
  const double lz = s2 > 1 ? -std::log1p(1 / s2) : std::log(s2) + lzc;
  return 0.5 * incompleteBeta(0.5, 0.5 * df, s2 / (1 + s2), 1 / (1 + s2), lz, lzc);
}

double tTail(double s, double df) {
  if (s < 1) return 0.5 - tCentre(s, df);  // the centre is below 0.35 there
  if (std::isinf(df)) return 0.5 * std::erfc(s / kSqrt2);
  // x = df / (df + t^2) = r2 / (1 + r2), r2 = df / t^2, ln x from logs (t^2 may overflow).
  const double r = std::sqrt(df) / s, r2 = r * r, q = s * s / df;
  const double ly = -std::log1p(r2);
  const double lx = std::isfinite(q) ? -std::log1p(q) : 2 * (0.5 * std::log(df) - std::log(s)) + ly;
  return 0.5 * incompleteBeta(0.5 * df, 0.5, r2 / (1 + r2), 1 / (1 + r2), lx, ly);
}

// ln of the density at +-s.
double tLnDensity(double s, double df) {
  if (std::isinf(df)) return -0.5 * s * s - kLnSqrt2Pi;
  const double s2 = s * s;
  const double l =
      s2 < df ? std::log1p(s2 / df) : 2 * std::log(s) - std::log(df) + std::log1p(df / s / s);
  return -0.5 * std::log(df) - lnBeta(0.5 * df, 0.5) - 0.5 * (df + 1) * l;
}

// The normal quantile's magnitude at q in (0, 0.5] (Abramowitz and Stegun 26.2.23, 4.5e-4): a
// starting point only.
double roughNormalQuantile(double q) {
  const double t = std::sqrt(-2 * std::log(q));
  return t - (2.515517 + t * (0.802853 + t * 0.010328)) /
                 (1 + t * (1.432788 + t * (0.189269 + t * 0.001308)));
}

// s > 0 with P(T < -s) = q, q in (0, 0.5).
double tUpperQuantile(double q, double df) {
  // Near the centre the equation is P(0 < T < s) = 0.5 - q (exact for q >= 0.25), in the tail
  // P(T < -s) = q: either way H(s) = target with H computed to full relative precision.
  const bool centre = q >= 0.25;
  const double target = centre ? 0.5 - q : q;
  const double dir = centre ? 1 : -1;  // H rises or falls with s
  const double ln_target = std::log(target);
  auto H = [&](double s) { return centre ? tCentre(s, df) : tTail(s, df); };
  // g(v) = dir (ln H(e^v) - ln target): rising in v = ln s.
  auto g = [&](double v) { return dir * (std::log(H(std::exp(v))) - ln_target); };

  double s0;
  if (centre) {
    s0 = target / std::exp(tLnDensity(0, df));
  } else {
    const double z = roughNormalQuantile(q);
    s0 = std::isinf(df) ? z : z + (z * z * z + z) / (4 * df);
    if (!(s0 > 0)) s0 = 1;
  }
  // Bracket in v, steps doubling.
  double v = std::log(s0), gv = g(v), lo, hi;
  if (gv == 0) return s0;
  if (gv < 0) {
    lo = v;
    for (double step = 1;; step *= 2) {
      hi = lo + step;
      if (hi > 710) hi = 710;  // past DBL_MAX: H is 0 or 1/2 there
      if (g(hi) > 0 || hi == 710) break;
      lo = hi;
    }
  } else {
    hi = v;
    for (double step = 1;; step *= 2) {
      lo = hi - step;
      if (lo < -750) lo = -750;  // s = 0: H is 0 or 1/2 there
      if (g(lo) < 0 || lo == -750) break;
      hi = lo;
    }
  }
  if (hi == 710 && g(std::log(std::numeric_limits<double>::max())) < 0) return kInf;  // overflows
  // Newton on g in v, kept inside the bracket (bisection where it would leave it), to ~1e-11.
  v = 0.5 * (lo + hi);
  for (int it = 0; it < 400; ++it) {
    const double s = std::exp(v), h = H(s);
    const double gval = dir * (std::log(h) - ln_target);
    if (gval == 0) break;
    if (gval < 0)
      lo = v;
    else
      hi = v;
    const double slope = std::exp(v + tLnDensity(s, df) - std::log(h));  // d g / d v = s f / H
    double next = v - gval / slope;
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    const double step = next - v;
    v = next;
    if (std::fabs(step) < 1e-11) break;
  }
  // Polish in s itself (v's own rounding near |v| = 700 is 1e-13): Newton on ln H(s) - ln target.
  double s = std::exp(v);
  for (int it = 0; it < 4; ++it) {
    const double h = H(s);
    const double step =
        (std::log(h) - ln_target) / (dir * std::exp(tLnDensity(s, df) - std::log(h)));
    if (!std::isfinite(step)) break;
    const double next = s - step;
    if (!(next > 0)) break;
    s = next;
    if (std::fabs(step) <= kEps * s) break;
  }
  return s;
}

// P(X <= k) for X ~ Binomial(n, 1/2).
double binomialHalfCdf(int64_t k, int64_t n) {
  if (k < 0) return 0;
  if (k >= n) return 1;
  return incompleteBeta(static_cast<double>(n - k), static_cast<double>(k + 1), 0.5, 0.5, -kLn2,
                        -kLn2);
}

// numpy.percentile's linear interpolation at quantile q of sorted x (non-empty).
double linearQuantile(const std::vector<double>& x, double q) {
  const size_t n = x.size();
  const double vi = static_cast<double>(n - 1) * q;
  if (vi >= static_cast<double>(n - 1)) return x[n - 1];
  if (vi <= 0) return x[0];
  const double prev = std::floor(vi);
  const size_t i = static_cast<size_t>(prev);
  const double gamma = vi - prev, a = x[i], b = x[i + 1], diff = b - a;
  return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
}

}  // namespace

// --- Public functions ----------------------------------------------------------------------

double studentTCdf(double t, double df) {
  if (std::isnan(t) || std::isnan(df) || df <= 0) return NaN;
  const double s = std::fabs(t);
  if (s < 1) {
    const double c = tCentre(s, df);
    return t < 0 ? 0.5 - c : 0.5 + c;
  }
  const double tail = tTail(s, df);
  return t < 0 ? tail : 1 - tail;
}

double studentTQuantile(double p, double df) {
  if (std::isnan(p) || std::isnan(df) || df <= 0 || p < 0 || p > 1) return NaN;
  if (p == 0) return -kInf;
  if (p == 1) return kInf;
  if (p == 0.5) return 0;
  return p < 0.5 ? -tUpperQuantile(p, df) : tUpperQuantile(1 - p, df);  // 1 - p exact here
}

Summary summarise(const std::vector<double>& x, double confidence) {
  checkConfidence(confidence);
  Summary r;
  r.n = static_cast<int>(x.size());
  if (x.empty()) return r;
  const bool constant = std::all_of(x.begin(), x.end(), [&](double v) { return v == x[0]; });
  r.mean =
      constant ? x[0] : std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
  if (x.size() < 2) return r;
  double ss = 0;
  if (!constant)
    for (double v : x) ss += (v - r.mean) * (v - r.mean);
  r.std = std::sqrt(ss / static_cast<double>(x.size() - 1));
  const double se = r.std / std::sqrt(static_cast<double>(x.size()));
  const double q = studentTQuantile(0.5 * (1 + confidence), static_cast<double>(x.size() - 1));
  const double half = se == 0 && std::isfinite(q) ? 0 : q * se;
  r.ci_lo = r.mean - half;
  r.ci_hi = r.mean + half;
  return r;
}

PairedTest pairedT(const std::vector<double>& a, const std::vector<double>& b, double confidence) {
  if (a.size() != b.size())
    throw std::invalid_argument("pairedT: " + std::to_string(a.size()) + " values against " +
                                std::to_string(b.size()));
  checkConfidence(confidence);
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  const Summary s = summarise(d, confidence);
  PairedTest r;
  r.n = s.n;
  r.diff = s.mean;
  r.ci_lo = s.ci_lo;
  r.ci_hi = s.ci_hi;
  if (s.n < 2) return r;
  const double se = s.std / std::sqrt(static_cast<double>(s.n));
  r.t = s.mean / se;  // 0 / 0: NaN; d / 0: +-inf
  r.p = std::isnan(r.t) ? NaN : 2 * studentTCdf(-std::fabs(r.t), s.n - 1.0);
  return r;
}

Wilcoxon wilcoxonSignedRank(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size())
    throw std::invalid_argument("wilcoxonSignedRank: " + std::to_string(a.size()) +
                                " values against " + std::to_string(b.size()));
  Wilcoxon r;
  r.n = static_cast<int>(a.size());
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  if (std::any_of(d.begin(), d.end(), [](double v) { return std::isnan(v); })) return r;
  r.zeros = static_cast<int>(std::count(d.begin(), d.end(), 0.0));
  if (d.empty() || r.zeros == r.n) return r;  // (every difference zero: SciPy raises)
  r.exact = d.size() <= 50 && r.zeros == 0;
  if (!r.exact) d.erase(std::remove(d.begin(), d.end(), 0.0), d.end());
  const size_t count = d.size();
  r.n = static_cast<int>(count);

  // Average ranks of |d|, and the tie groups' t (t^2 - 1).
  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t i, size_t j) { return std::fabs(d[i]) < std::fabs(d[j]); });
  double r_plus = 0, r_minus = 0, ties = 0;
  for (size_t start = 0; start < count;) {
    size_t end = start + 1;
    while (end < count && std::fabs(d[order[end]]) == std::fabs(d[order[start]])) ++end;
    const double rank = 0.5 * static_cast<double>(start + 1 + end);
    const double t = static_cast<double>(end - start);
    ties += t * (t * t - 1);
    for (size_t k = start; k < end; ++k) (d[order[k]] > 0 ? r_plus : r_minus) += rank;
    start = end;
  }
  r.statistic = std::min(r_plus, r_minus);
  const double nd = static_cast<double>(count);
  if (r.exact) {
    // Subsets of the ranks 1..count per rank sum (at most 2^50 of them: exact in uint64 and in
    // the double they are scaled into, as SciPy's pmf is).
    const size_t total = count * (count + 1) / 2;
    std::vector<uint64_t> ways(total + 1, 0);
    ways[0] = 1;
    for (size_t k = 1; k <= count; ++k)
      for (size_t s = k * (k + 1) / 2; s >= k; --s) ways[s] += ways[s - k];
    const size_t rp = static_cast<size_t>(r_plus);  // SciPy's int(r_plus): a tie's half dropped
    if (rp == total / 2) {
      r.p = 1;
    } else {
      uint64_t less = 0, greater = 0;
      for (size_t s = 0; s <= total; ++s) {
        if (s <= rp) less += ways[s];
        if (s >= rp) greater += ways[s];
      }
      r.p = std::min(1.0, std::ldexp(2.0 * static_cast<double>(std::min(less, greater)),
                                     -static_cast<int>(count)));
    }
  } else {
    const double mn = nd * (nd + 1) * 0.25;
    const double se = std::sqrt((nd * (nd + 1) * (2 * nd + 1) - 0.5 * ties) / 24);
    r.z = (r.statistic - mn) / se;
    r.p = std::erfc(std::fabs(r.z) / kSqrt2);  // 2 (1 - Phi(|z|))
  }
  return r;
}

std::vector<double> holm(const std::vector<double>& p) {
  std::vector<size_t> order;
  for (size_t i = 0; i < p.size(); ++i)
    if (!std::isnan(p[i])) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return p[i] < p[j]; });
  std::vector<double> out(p.size(), NaN);
  const size_t m = order.size();
  double running = 0;
  for (size_t k = 0; k < m; ++k) {
    running = std::max(running, p[order[k]] * static_cast<double>(m - k));
    out[order[k]] = std::min(running, 1.0);
  }
  return out;
}

McNemar mcnemarExact(int64_t b, int64_t c) {
  if (b < 0 || c < 0)
    throw std::invalid_argument("mcnemarExact: negative count " + std::to_string(std::min(b, c)));
  McNemar r;
  r.b = b;
  r.c = c;
  const int64_t n = b + c;
  if (n == 0 || b == c) return r;  // p = 1
  // binomtest's two-sided p at 0.5: P(X <= k) plus the upper terms j >= j0 no likelier than
  // P(X = k) (1 + 1e-7); by symmetry j0 = n - k, less any further terms within that tolerance.
  const int64_t k = std::min(b, c);
  int64_t j0 = n - k;
  double ln_ratio = 0;  // ln P(X = j0 - 1) / P(X = k)
  while (2 * (j0 - 1) >= n) {
    ln_ratio += std::log(static_cast<double>(j0) / static_cast<double>(n - j0 + 1));
    if (ln_ratio > std::log1p(1e-7)) break;
    --j0;
  }
  r.p = std::min(1.0, binomialHalfCdf(k, n) + binomialHalfCdf(n - j0, n));
  return r;
}

McNemar mcnemarExact(const std::vector<bool>& a_correct, const std::vector<bool>& b_correct) {
  if (a_correct.size() != b_correct.size())
    throw std::invalid_argument("mcnemarExact: " + std::to_string(a_correct.size()) +
                                " outcomes against " + std::to_string(b_correct.size()));
  int64_t b = 0, c = 0;
  for (size_t i = 0; i < a_correct.size(); ++i) {
    b += a_correct[i] && !b_correct[i];
    c += !a_correct[i] && b_correct[i];
  }
  return mcnemarExact(b, c);
}

Interval percentileInterval(std::vector<double> distribution, double estimate, double confidence) {
  checkConfidence(confidence);
  Interval r;
  r.estimate = estimate;
  if (distribution.empty() ||
      std::any_of(distribution.begin(), distribution.end(), [](double v) { return std::isnan(v); }))
    return r;
  std::sort(distribution.begin(), distribution.end());
  r.lo = linearQuantile(distribution, 0.5 * (1 - confidence));
  r.hi = linearQuantile(distribution, 0.5 * (1 + confidence));
  return r;
}

uint64_t uniformIndex(std::mt19937_64& rng, uint64_t n) {
  if (n == 0) throw std::invalid_argument("uniformIndex: an empty range");
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: the incomplete block [0, threshold)
  for (;;) {
    const uint64_t x = rng();
    if (x >= threshold) return x % n;
  }
}

Interval pairedBootstrap(size_t n,
                         const std::function<double(const std::vector<uint32_t>&)>& statistic,
                         int resamples, uint64_t seed, double confidence) {
  checkConfidence(confidence);
  if (n == 0 || n > 0xffffffffu)
    throw std::invalid_argument("pairedBootstrap: " + std::to_string(n) + " items");
  if (resamples < 1)
    throw std::invalid_argument("pairedBootstrap: " + std::to_string(resamples) + " resamples");
  std::vector<uint32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0u);
  const double estimate = statistic(idx);
  std::mt19937_64 rng(seed);
  std::vector<double> values(static_cast<size_t>(resamples));
  for (double& v : values) {
    for (uint32_t& i : idx) i = static_cast<uint32_t>(uniformIndex(rng, n));
    v = statistic(idx);
  }
  return percentileInterval(std::move(values), estimate, confidence);
}

}  // namespace msconv::stats
