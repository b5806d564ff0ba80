#include "msconv/eval/roc.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include <ATen/Parallel.h>

#include "msconv/error.h"
#include "util/big_buffer.h"

namespace msconv::eval {
namespace {

// Order-preserving map of a float onto uint32 (ascending floats -> ascending integers).
inline uint32_t floatKey(float f) {
  if (f == 0.0f) f = 0.0f;  // -0 and +0 are one score
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

inline float keyFloat(uint32_t k) {
  const uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Items (descending-score key << 32 | label) sorted by key: LSD radix over four 8-bit digits,
// each pass split over the intra-op threads (per-chunk histograms, then a stable scatter).
// Returns the buffer holding the result (`a` or `tmp`).
uint64_t* radixSort(uint64_t* a, uint64_t* tmp, int64_t n) {
  const int chunks = std::max(1, std::min<int>(at::get_num_threads(), 16));
  const int64_t per = (n + chunks - 1) / chunks;
  std::vector<std::array<int64_t, 256>> count(chunks);
  for (int d = 0; d < 4; ++d) {
    const int shift = 32 + 8 * d;
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        auto& h = count[c];
        h.fill(0);
        for (int64_t i = c * per, e = std::min(n, (c + 1) * per); i < e; ++i)
          ++h[(a[i] >> shift) & 0xff];
      }
    });
    // Offsets: bucket-major, chunk-minor, so the scatter is stable.
    int64_t sum = 0;
    bool one_bucket = false;
    for (int b = 0; b < 256; ++b) {
      int64_t in_bucket = 0;
      for (int c = 0; c < chunks; ++c) {
        const int64_t k = count[c][b];
        count[c][b] = sum;
        sum += k;
        in_bucket += k;
      }
      if (in_bucket == n) one_bucket = true;
    }
    if (one_bucket) continue;  // this digit is the same everywhere
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        auto& off = count[c];
        for (int64_t i = c * per, e = std::min(n, (c + 1) * per); i < e; ++i)
          tmp[off[(a[i] >> shift) & 0xff]++] = a[i];
      }
    });
    std::swap(a, tmp);
  }
  return a;
}

}  // namespace

const std::vector<double>& ijbFars() {
  static const std::vector<double> f{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1};
  return f;
}

uint64_t rocItem(float score, bool genuine) {
  return (static_cast<uint64_t>(~floatKey(score)) << 32) | (genuine ? 1u : 0u);
}

Roc computeRoc(const float* scores, const uint8_t* labels, int64_t n,
               const std::vector<double>& fars, const std::string& what) {
  util::BigBuffer<uint64_t> items(n), scratch(n);
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(scores[i])) throw Error(what + ": score " + std::to_string(i) + " is NaN");
    items[i] = rocItem(scores[i], labels[i] != 0);
  }
  return rocFromItems(items.data(), scratch.data(), n, fars, what);
}

Roc rocFromItems(uint64_t* items_in, uint64_t* scratch, int64_t n, const std::vector<double>& fars,
                 const std::string& what) {
  Roc roc;
  for (int64_t i = 0; i < n; ++i) roc.genuine += items_in[i] & 1;
  roc.impostor = n - roc.genuine;
  if (roc.genuine == 0 || roc.impostor == 0)
    throw Error(what + ": needs genuine and impostor pairs (" + std::to_string(roc.genuine) +
                " genuine, " + std::to_string(roc.impostor) + " impostor)");
  const uint64_t* items = radixSort(items_in, scratch, n);
  if (std::isnan(keyFloat(~static_cast<uint32_t>(items[0] >> 32))) ||
      std::isnan(keyFloat(~static_cast<uint32_t>(items[n - 1] >> 32))))
    throw Error(what + ": a score is NaN");

  // One sweep: a point at the end of each run of equal scores; a point is dropped when it lies
  // on the line through its neighbours (both second differences zero), as roc_curve does.
  struct Raw {
    int64_t tp, fp;
    uint32_t key;
  };
  std::vector<Raw> kept;
  kept.reserve(1024);
  kept.push_back({0, 0, 0});  // roc_curve's leading (0, 0) (threshold: above every score)
  Raw prev2{}, prev{};
  int64_t seen = 0, tp = 0;
  for (int64_t i = 0; i < n; ++i) {
    tp += items[i] & 1;
    const uint32_t key = static_cast<uint32_t>(items[i] >> 32);
    if (i + 1 < n && static_cast<uint32_t>(items[i + 1] >> 32) == key) continue;
    const Raw cur{tp, i + 1 - tp, key};
    // `prev` is kept when it is the first distinct point or a corner between prev2 and cur.
    if (seen == 1 || (seen >= 2 && ((cur.fp - 2 * prev.fp + prev2.fp) != 0 ||
                                    (cur.tp - 2 * prev.tp + prev2.tp) != 0)))
      kept.push_back(prev);
    prev2 = prev;
    prev = cur;
    ++seen;
  }
  kept.push_back(prev);  // the last distinct point is always kept
  roc.points.resize(kept.size());
  const double P = static_cast<double>(roc.genuine), N = static_cast<double>(roc.impostor);
  for (size_t k = 0; k < kept.size(); ++k) {
    RocPoint& p = roc.points[k];
    p.far = kept[k].fp / N;
    p.tar = kept[k].tp / P;
    p.threshold = k == 0 ? std::numeric_limits<double>::infinity()
                         : static_cast<double>(keyFloat(~kept[k].key));
  }
  for (size_t k = 1; k < roc.points.size(); ++k)
    roc.auc += (roc.points[k].far - roc.points[k - 1].far) *
               (roc.points[k].tar + roc.points[k - 1].tar) / 2;
  // Closest FAR; on ties the later point (insightface flips the curve and takes the first). FAR
  // rises along the curve, so the closest points sit around the first one at or above it.
  for (double f : fars) {
    const auto it = std::lower_bound(roc.points.begin(), roc.points.end(), f,
                                     [](const RocPoint& p, double v) { return p.far < v; });
    size_t best = 0;
    double best_d = std::numeric_limits<double>::infinity();
    const size_t lo = it == roc.points.begin() ? 0 : (it - roc.points.begin()) - 1;
    // Ties at the lower neighbour's FAR all precede it; the upper neighbour's FAR may repeat.
    for (size_t k = lo; k < roc.points.size(); ++k) {
      const double d = std::abs(roc.points[k].far - f);
      if (d > best_d) break;
      best_d = d, best = k;
    }
    roc.tar_at_far.emplace_back(f, roc.points[best].tar);
  }
  return roc;
}

std::vector<RocPoint> thinRoc(const Roc& roc, int count) {
  std::vector<RocPoint> out;
  if (roc.points.empty() || count < 2) return out;
  const double lo = std::log10(1.0 / std::max<int64_t>(1, roc.impostor));
  size_t k = 0;
  for (int i = 0; i < count; ++i) {
    const double far = std::pow(10.0, lo + (0.0 - lo) * i / (count - 1));
    while (k + 1 < roc.points.size() && roc.points[k + 1].far <= far * (1 + 1e-12)) ++k;
    RocPoint p = roc.points[k];
    p.far = far;
    out.push_back(p);
  }
  return out;
}

std::string rocCsv(const std::vector<RocPoint>& points) {
  std::ostringstream s;
  s.precision(9);
  s << "far,tar,threshold\n";
  for (const auto& p : points) s << p.far << "," << p.tar << "," << p.threshold << "\n";
  return s.str();
}

}  // namespace msconv::eval
