#include "msconv/eval/det.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "msconv/error.h"

namespace msconv::eval {
namespace {

// Order-preserving map of a float onto uint32 (as roc.cpp's; -0 and +0 are one score).
inline uint32_t detKey(float f) {
  if (f == 0.0f) f = 0.0f;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

}  // namespace

Det computeDet(const Roc& roc, int count) {
  Det d;
  const auto& p = roc.points;
  if (p.size() < 2) return d;
  // FNMR from the genuine count (1 - TAR would round): rejected genuine pairs / genuine pairs.
  const double P = static_cast<double>(roc.genuine);
  for (const auto& r : thinRoc(roc, count))
    d.points.push_back({r.far, (P - std::round(r.tar * P)) / P, r.threshold});
  // EER: the root of 1 - x - tpr(x), tpr the ROC interpolated linearly (scipy's interp1d finds
  // x's segment with searchsorted(fpr, x, 'left'): between the last point at a lower FAR and the
  // first at a higher one). g = 1 - far - tar falls along the curve, from 1 at (0, 0) to -1 at
  // (1, 1).
  auto g = [&](size_t k) { return 1.0 - p[k].far - p[k].tar; };
  size_t k = 1;
  while (k + 1 < p.size() && g(k) > 0) ++k;
  // The first point at k's FAR: interp1d's upper end of every segment ending at that FAR.
  size_t first = k;
  while (first > 0 && p[first - 1].far == p[k].far) --first;
  if (g(first) > 0 || first == 0) {
    // The root lies on the vertical run at this FAR, where interp1d jumps from the run's first
    // point (at the FAR itself) to its last (just above it). brentq stops at the side of the
    // jump where |1 - FAR - TAR| is smaller, and interp1d(fpr, thresholds) reads that point's
    // threshold: the end of the run whose FNMR is nearer the FMR. (At FAR 0, the first point's
    // threshold is above every score: the last point's then.)
    size_t last = k;
    while (last + 1 < p.size() && p[last + 1].far == p[k].far) ++last;
    d.eer = p[k].far;
    d.eer_threshold =
        first > 0 && g(first) < std::abs(g(last)) ? p[first].threshold : p[last].threshold;
    return d;
  }
  const RocPoint &a = p[first - 1], &b = p[first];
  // On the segment tar = a.tar + s (x - a.far): 1 - x - tar = 0.
  const double s = (b.tar - a.tar) / (b.far - a.far);
  const double x = std::clamp(a.far + g(first - 1) / (1.0 + s), a.far, b.far);
  d.eer = x;
  // interp1d(fpr, thresholds)(eer) on the same segment; the first point's threshold is +inf
  // (above every score): the segment's upper end then.
  if (std::isinf(a.threshold) || x == b.far)
    d.eer_threshold = b.threshold;
  else
    d.eer_threshold = a.threshold + (b.threshold - a.threshold) * (x - a.far) / (b.far - a.far);
  return d;
}

double normalDeviate(double p) {
  if (!(p > 0)) return -std::numeric_limits<double>::infinity();
  if (!(p < 1)) return std::numeric_limits<double>::infinity();
  // Acklam's rational approximation (relative error 1.15e-9), then one Halley step on
  // Phi(x) = erfc(-x / sqrt 2) / 2, which brings it to double precision.
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double lo = 0.02425, hi = 1 - lo;
  double x;
  if (p < lo) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= hi) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // Halley: e = Phi(x) - p, u = e sqrt(2 pi) exp(x^2 / 2).
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

double thresholdAtFar(const float* scores, const uint8_t* labels, int64_t n, double far) {
  if (!(far > 0 && far <= 1))
    throw Error("threshold at FAR: FAR " + std::to_string(far) + " is not in (0, 1]");
  // Radix selection on the scores' order-preserving keys: a histogram of the top 16 bits of
  // every impostor's key (per thread, then summed), the bucket holding the (k+1)-th largest,
  // then the low 16 bits within it. Two passes, no copy, no sort.
  const int chunks = std::max(1, std::min<int>(at::get_num_threads(), 16));
  const int64_t per = (n + chunks - 1) / chunks;
  std::vector<std::vector<int64_t>> hist(chunks);
  std::vector<int64_t> nan_at(chunks, -1);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      auto& h = hist[c];
      h.assign(1 << 16, 0);
      for (int64_t i = c * per, e = std::min(n, (c + 1) * per); i < e; ++i) {
        if (labels[i]) continue;
        if (std::isnan(scores[i])) {
          nan_at[c] = i;
          break;
        }
        ++h[detKey(scores[i]) >> 16];
      }
    }
  });
  for (int64_t i : nan_at)
    if (i >= 0) throw Error("threshold at FAR: score " + std::to_string(i) + " is NaN");
  std::vector<int64_t> top(1 << 16, 0);
  int64_t impostors = 0;
  for (const auto& h : hist)
    for (size_t b = 0; b < h.size(); ++b) top[b] += h[b], impostors += h[b];
  if (impostors == 0) throw Error("threshold at FAR: no impostor pairs");
  // At most k impostors may be accepted (score >= threshold).
  const int64_t k = static_cast<int64_t>(std::floor(far * impostors * (1 + 1e-12)));
  if (k >= impostors) {  // every impostor may be accepted: the lowest impostor score
    int b = 0;
    while (top[b] == 0) ++b;
    float lowest = std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i)
      if (!labels[i] && (detKey(scores[i]) >> 16) == static_cast<uint32_t>(b))
        lowest = std::min(lowest, scores[i]);
    return lowest;
  }
  // The (k+1)-th largest impostor key: bucket first, then its low bits.
  int64_t above = 0;
  int bucket = (1 << 16) - 1;
  while (above + top[bucket] <= k) above += top[bucket--];
  std::vector<int64_t> low(1 << 16, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i]) continue;
    const uint32_t key = detKey(scores[i]);
    if ((key >> 16) == static_cast<uint32_t>(bucket)) ++low[key & 0xffff];
  }
  int l = (1 << 16) - 1;
  while (above + low[l] <= k) above += low[l--];
  const uint32_t key = (static_cast<uint32_t>(bucket) << 16) | static_cast<uint32_t>(l);
  const uint32_t u = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
  float s;
  std::memcpy(&s, &u, 4);
  // Just above it: accepts exactly the impostors scored higher (at most k).
  return std::nextafter(s, std::numeric_limits<float>::infinity());
}

ScoreHistogram scoreHistogram(const float* scores, const uint8_t* labels, int64_t n, int bins,
                              double far) {
  if (bins < 1) throw Error("score histogram: " + std::to_string(bins) + " bins");
  ScoreHistogram h;
  h.far = far;
  h.threshold = thresholdAtFar(scores, labels, n, far);
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (int64_t i = 0; i < n; ++i) lo = std::min(lo, scores[i]), hi = std::max(hi, scores[i]);
  h.lo = lo;
  h.hi = hi > lo ? hi : lo + 1.0;
  h.genuine.assign(bins, 0);
  h.impostor.assign(bins, 0);
  const double scale = bins / (h.hi - h.lo);
  for (int64_t i = 0; i < n; ++i) {
    const int b = std::min(bins - 1, static_cast<int>((scores[i] - h.lo) * scale));
    ++(labels[i] ? h.genuine : h.impostor)[b];
  }
  return h;
}

}  // namespace msconv::eval
