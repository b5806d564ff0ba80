#include "msconv/inspect/faithfulness.h"

#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>

#include "msconv/data/decode.h"
#include "msconv/data/image.h"
#include "msconv/data/pairs.h"
#include "msconv/error.h"
#include "msconv/nn/backbone.h"

namespace msconv::inspect {
// A named namespace: the unity build puts this file beside inspect.cpp.
namespace faithfulness_detail {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool wants(const FaithfulnessOptions& o, FaithfulnessMetric m) {
  return o.metrics.empty() || std::find(o.metrics.begin(), o.metrics.end(), m) != o.metrics.end();
}

// numpy.percentile(values, p) with its default linear interpolation.
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(std::floor(pos));
  if (i + 1 >= v.size()) return v.back();
  const double t = pos - static_cast<double>(i);
  // numpy's _lerp: a + (b - a) t, from the upper end when t >= 0.5.
  return t >= 0.5 ? v[i + 1] - (v[i + 1] - v[i]) * (1 - t) : v[i] + (v[i + 1] - v[i]) * t;
}

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

at::Tensor planar(const at::Tensor& image) {
  return image.detach().to(torch::kCPU, torch::kFloat).contiguous().clone();
}

at::Tensor makeBaseline(const at::Tensor& img, const FaithfulnessOptions& o) {
  if (o.baseline == FaithfulnessOptions::Baseline::kMean)
    return img.mean({1, 2}, true).expand_as(img).contiguous().clone();
  const int H = static_cast<int>(img.size(1)), W = static_cast<int>(img.size(2));
  const int k = 2 * static_cast<int>(std::ceil(3 * o.blur_sigma)) + 1;
  auto out = torch::empty_like(img);
  for (int64_t c = 0; c < img.size(0); ++c) {
    const cv::Mat src(H, W, CV_32F, img[c].data_ptr<float>());
    cv::Mat dst(H, W, CV_32F, out[c].data_ptr<float>());
    cv::GaussianBlur(src, dst, {k, k}, o.blur_sigma, o.blur_sigma, cv::BORDER_REFLECT_101);
  }
  return out;
}

// Row-major pixel indices by CAM value, largest first; ties keep index order.
std::vector<int64_t> rankPixels(const cv::Mat& cam) {
  std::vector<int64_t> order(static_cast<size_t>(cam.total()));
  std::iota(order.begin(), order.end(), 0);
  const float* v = cam.ptr<float>();
  std::stable_sort(order.begin(), order.end(), [v](int64_t a, int64_t b) { return v[a] > v[b]; });
  return order;
}

// Deletion (from the image towards `base`) or insertion (from `base` towards the image): the
// frames after 0 .. steps steps and their fractions of pixels moved.
void curveFrames(const at::Tensor& img, const at::Tensor& base, const std::vector<int64_t>& order,
                 int steps, bool deletion, std::vector<at::Tensor>& frames,
                 std::vector<double>& fraction) {
  const int64_t C = img.size(0), HW = img.size(1) * img.size(2);
  auto cur = (deletion ? img : base).clone();
  const auto& src = deletion ? base : img;
  float* d = cur.data_ptr<float>();
  const float* s = src.data_ptr<float>();
  frames.push_back(cur.clone());
  fraction.push_back(0);
  int64_t done = 0;
  for (int k = 1; k <= steps; ++k) {
    const int64_t upto = (2 * k * HW + steps) / (2 * steps);  // round(k * HW / steps)
    for (; done < upto; ++done)
      for (int64_t c = 0; c < C; ++c) d[c * HW + order[done]] = s[c * HW + order[done]];
    frames.push_back(cur.clone());
    fraction.push_back(static_cast<double>(upto) / static_cast<double>(HW));
  }
}

std::vector<double> scoreFrames(const ScoreFunction& score, const std::vector<at::Tensor>& frames,
                                int batch) {
  std::vector<double> out;
  out.reserve(frames.size());
  for (size_t b = 0; b < frames.size(); b += batch) {
    const size_t e = std::min(frames.size(), b + static_cast<size_t>(batch));
    const std::vector<at::Tensor> chunk(frames.begin() + b, frames.begin() + e);
    at::Tensor s;
    {
      torch::NoGradGuard no_grad;
      s = score(torch::stack(chunk)).detach().to(torch::kCPU, torch::kDouble).flatten();
    }
    if (s.size(0) != static_cast<int64_t>(e - b))
      throw Error("faithfulness: the score function returned " + std::to_string(s.size(0)) +
                  " scores for " + std::to_string(e - b) + " images");
    for (int64_t i = 0; i < s.size(0); ++i) out.push_back(s[i].item<double>());
  }
  return out;
}

std::string joinNames() {
  return "deletion, insertion, road, drop";
}

}  // namespace faithfulness_detail

using namespace faithfulness_detail;

std::vector<FaithfulnessMetric> parseFaithfulnessMetrics(const std::string& list) {
  std::vector<FaithfulnessMetric> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty()) continue;
    FaithfulnessMetric m;
    if (item == "deletion") {
      m = FaithfulnessMetric::kDeletion;
    } else if (item == "insertion") {
      m = FaithfulnessMetric::kInsertion;
    } else if (item == "road") {
      m = FaithfulnessMetric::kRoad;
    } else if (item == "drop") {
      m = FaithfulnessMetric::kDrop;
    } else {
      throw Error("unknown faithfulness metric '" + item + "' (" + joinNames() + ")");
    }
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  }
  if (out.empty()) throw Error("no faithfulness metric in '" + list + "' (" + joinNames() + ")");
  return out;
}

const char* faithfulnessMetricName(FaithfulnessMetric m) {
  switch (m) {
    case FaithfulnessMetric::kDeletion:
      return "deletion";
    case FaithfulnessMetric::kInsertion:
      return "insertion";
    case FaithfulnessMetric::kRoad:
      return "road";
    case FaithfulnessMetric::kDrop:
      return "drop";
  }
  return "?";
}

FaithfulnessOptions::Baseline baselineFromName(const std::string& name) {
  if (name == "blur") return FaithfulnessOptions::Baseline::kBlur;
  if (name == "mean") return FaithfulnessOptions::Baseline::kMean;
  throw Error("unknown baseline '" + name + "' (blur, mean)");
}

double trapezoidArea(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw Error("trapezoidArea: x and y differ in length");
  double a = 0;
  for (size_t i = 1; i < x.size(); ++i) a += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2;
  return a;
}

cv::Mat roadRemovalMask(const cv::Mat& cam, double fraction, bool most_relevant_first) {
  if (cam.type() != CV_32F || cam.empty() || !cam.isContinuous())
    throw Error("ROAD: the CAM must be a non-empty continuous float map");
  if (!(fraction > 0 && fraction < 1))
    throw Error("ROAD: the fraction removed must be within (0, 1) (got " +
                std::to_string(fraction) + ")");
  const float* c = cam.ptr<float>();
  std::vector<double> v(cam.total());
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = most_relevant_first ? c[i]
                               : static_cast<double>(1.0f - c[i]);  // float, as torch's 1 - mask
  const double threshold = percentile(v, 100.0 * (1.0 - fraction));
  cv::Mat removed(cam.size(), CV_8U);
  uint8_t* r = removed.ptr<uint8_t>();
  for (size_t i = 0; i < v.size(); ++i) r[i] = v[i] < threshold ? 0 : 1;
  return removed;
}

at::Tensor noisyLinearImpute(const at::Tensor& image, const cv::Mat& removed, double noise,
                             uint64_t seed) {
  if (image.dim() != 3) throw Error("imputer: the image must be C x H x W");
  const int H = static_cast<int>(image.size(1)), W = static_cast<int>(image.size(2));
  const int64_t C = image.size(0), HW = static_cast<int64_t>(H) * W;
  if (removed.type() != CV_8U || removed.rows != H || removed.cols != W || !removed.isContinuous())
    throw Error("imputer: the mask must be an H x W 8-bit map of the image's size");
  auto out = planar(image);
  float* px = out.data_ptr<float>();
  const uint8_t* m = removed.ptr<uint8_t>();
  // The unknowns: removed pixels, numbered in row-major order.
  std::vector<int64_t> var(HW, -1), pixel;
  for (int64_t p = 0; p < HW; ++p)
    if (m[p]) {
      var[p] = static_cast<int64_t>(pixel.size());
      pixel.push_back(p);
    }
  const int64_t n = static_cast<int64_t>(pixel.size());
  std::mt19937_64 rng(splitmix(seed));
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> x(n * C, 0.0);  // unknown-major: x[i * C + c]
  if (n > 0 && n < HW) {
    // d_i x_i - sum_{removed j} w_ij x_j = sum_{kept j} w_ij v_j, with d_i the weights of the
    // in-image neighbours: symmetric, and positive definite as every removed region touches a
    // kept pixel (the image is connected). Solved exactly by a Cholesky factorisation within the
    // matrix's envelope (row i's first non-zero is its upper-left removed neighbour, so fill-in
    // stays within about one image row: O(n W^2) at worst).
    static const int dy[8] = {1, 0, -1, 1, 0, -1, 1, -1}, dx[8] = {1, 1, 1, -1, -1, -1, 0, 0};
    static const double wt[8] = {1.0 / 12, 1.0 / 6,  1.0 / 12, 1.0 / 12,
                                 1.0 / 6,  1.0 / 12, 1.0 / 6,  1.0 / 6};
    std::vector<int64_t> first(n), start(n + 1, 0);
    for (int64_t i = 0; i < n; ++i) {
      const int y = static_cast<int>(pixel[i] / W), xx = static_cast<int>(pixel[i] % W);
      first[i] = i;
      for (int k = 0; k < 8; ++k) {
        const int yy = y + dy[k], xk = xx + dx[k];
        if (yy < 0 || yy >= H || xk < 0 || xk >= W) continue;
        const int64_t v = var[static_cast<int64_t>(yy) * W + xk];
        if (v >= 0 && v < first[i]) first[i] = v;
      }
      start[i + 1] = start[i] + (i - first[i] + 1);
    }
    // Row i of the lower triangle, columns first[i] .. i, at L[start[i] + (j - first[i])].
    std::vector<double> L(static_cast<size_t>(start[n]), 0.0), b(n * C, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const int y = static_cast<int>(pixel[i] / W), xx = static_cast<int>(pixel[i] % W);
      double* row = L.data() + start[i];  // row[j - first[i]]: column j
      const int64_t fi = first[i];
      for (int k = 0; k < 8; ++k) {
        const int yy = y + dy[k], xk = xx + dx[k];
        if (yy < 0 || yy >= H || xk < 0 || xk >= W) continue;
        row[i - fi] += wt[k];  // the diagonal
        const int64_t q = static_cast<int64_t>(yy) * W + xk;
        if (var[q] < 0) {
          for (int64_t c = 0; c < C; ++c) b[i * C + c] += wt[k] * px[c * HW + q];
        } else if (var[q] < i) {
          row[var[q] - fi] -= wt[k];
        }
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      double* ri = L.data() + start[i];
      const int64_t fi = first[i];
      for (int64_t j = fi; j < i; ++j) {
        const double* rj = L.data() + start[j];
        const int64_t fj = first[j], k0 = std::max(fi, fj);
        double s = ri[j - fi];
        const double* a = ri + (k0 - fi);
        const double* bj = rj + (k0 - fj);
        for (int64_t k = 0; k < j - k0; ++k) s -= a[k] * bj[k];
        ri[j - fi] = s / rj[j - fj];
      }
      double d = ri[i - fi];
      for (int64_t k = 0; k < i - fi; ++k) d -= ri[k] * ri[k];
      if (!(d > 0)) throw Error("imputer: the system is not positive definite");
      ri[i - fi] = std::sqrt(d);
    }
    // L y = b, then L^T x = y, every channel at once.
    x = b;
    for (int64_t i = 0; i < n; ++i) {
      const double* ri = L.data() + start[i];
      const int64_t fi = first[i];
      for (int64_t c = 0; c < C; ++c) {
        double s = x[i * C + c];
        for (int64_t k = fi; k < i; ++k) s -= ri[k - fi] * x[k * C + c];
        x[i * C + c] = s / ri[i - fi];
      }
    }
    for (int64_t i = n - 1; i >= 0; --i) {
      const double* ri = L.data() + start[i];
      const int64_t fi = first[i];
      for (int64_t c = 0; c < C; ++c) {
        x[i * C + c] /= ri[i - fi];
        for (int64_t k = fi; k < i; ++k) x[k * C + c] -= ri[k - fi] * x[i * C + c];
      }
    }
  }
  // Noise drawn channel by channel over the unknowns, as torch.randn_like(res.t()) lays it out.
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < n; ++i)
      px[c * HW + pixel[i]] = static_cast<float>(x[i * C + c] + noise * normal(rng));
  return out;
}

Faithfulness measureFaithfulness(const ScoreFunction& score, const at::Tensor& image_in,
                                 const cv::Mat& cam_in, const FaithfulnessOptions& o) {
  if (image_in.dim() != 3) throw Error("faithfulness: the image must be 3 x H x W");
  const auto img = planar(image_in);
  const int H = static_cast<int>(img.size(1)), W = static_cast<int>(img.size(2));
  if (cam_in.rows != H || cam_in.cols != W || cam_in.channels() != 1)
    throw Error("faithfulness: the CAM is " + std::to_string(cam_in.cols) + "x" +
                std::to_string(cam_in.rows) + ", the image " + std::to_string(W) + "x" +
                std::to_string(H));
  if (o.steps < 1) throw Error("faithfulness: steps must be at least 1");
  if (o.batch < 1) throw Error("faithfulness: the batch must be at least 1");
  if (o.baseline == FaithfulnessOptions::Baseline::kBlur && !(o.blur_sigma > 0))
    throw Error("faithfulness: the blur sigma must be positive");
  for (double f : o.road_percentiles)
    if (!(f > 0 && f < 1))
      throw Error("faithfulness: ROAD fractions must be within (0, 1) (got " + std::to_string(f) +
                  ")");
  cv::Mat cam;
  cam_in.convertTo(cam, CV_32F);
  cam = cam.clone();  // continuous

  // Every image to score, in one list: the original, deletion, insertion, ROAD, masked.
  std::vector<at::Tensor> frames{img};
  Faithfulness r;
  const double nan = kNaN;
  r.road_combined = r.drop = r.increase = nan;
  r.deletion.auc = r.insertion.auc = nan;
  const bool del = wants(o, FaithfulnessMetric::kDeletion),
             ins = wants(o, FaithfulnessMetric::kInsertion),
             road = wants(o, FaithfulnessMetric::kRoad), drop = wants(o, FaithfulnessMetric::kDrop);
  size_t del_at = 0, ins_at = 0, road_at = 0, drop_at = 0;
  if (del || ins) {
    const auto base = makeBaseline(img, o);
    const auto order = rankPixels(cam);
    if (del) {
      del_at = frames.size();
      curveFrames(img, base, order, o.steps, true, frames, r.deletion.fraction);
    }
    if (ins) {
      ins_at = frames.size();
      curveFrames(img, base, order, o.steps, false, frames, r.insertion.fraction);
    }
  }
  if (road) {
    road_at = frames.size();
    uint64_t call = 0;
    for (bool most : {true, false})
      for (double f : o.road_percentiles)
        frames.push_back(noisyLinearImpute(img, roadRemovalMask(cam, f, most), o.road_noise,
                                           splitmix(o.seed) ^ splitmix(++call)));
  }
  if (drop) {
    drop_at = frames.size();
    const auto m = torch::from_blob(cam.data, {1, H, W}, torch::kFloat);
    frames.push_back(img * m);
  }
  const auto s = scoreFrames(score, frames, o.batch);
  r.target = s[0];
  auto fill = [&](FaithfulnessCurve& c, size_t at) {
    c.score.assign(s.begin() + at, s.begin() + at + c.fraction.size());
    c.auc = trapezoidArea(c.fraction, c.score);
  };
  if (del) fill(r.deletion, del_at);
  if (ins) fill(r.insertion, ins_at);
  if (road) {
    const size_t P = o.road_percentiles.size();
    double sum = 0;
    for (size_t i = 0; i < P; ++i) {
      r.road_most.push_back(s[road_at + i] - r.target);
      r.road_least.push_back(s[road_at + P + i] - r.target);
      sum += (r.road_least.back() - r.road_most.back()) / 2;
    }
    r.road_combined = P ? sum / static_cast<double>(P) : nan;
  }
  if (drop) {
    const double after = s[drop_at];
    r.drop = r.target > 0 ? 100.0 * std::max(0.0, r.target - after) / r.target : nan;
    r.increase = after > r.target ? 1.0 : 0.0;
  }
  return r;
}

std::vector<size_t> faithfulnessPairs(const data::PairSet& set, int n) {
  std::vector<size_t> genuine;
  for (size_t i = 0; i < set.pairs(); ++i)
    if (set.issame[i]) genuine.push_back(i);
  if (n < 1)
    throw Error(set.path + ": the number of pairs measured must be at least 1 (got " +
                std::to_string(n) + ")");
  if (static_cast<size_t>(n) > genuine.size())
    throw Error(set.path + ": " + std::to_string(n) + " pairs asked for, but the set has only " +
                std::to_string(genuine.size()) + " genuine pairs (of " +
                std::to_string(set.pairs()) + ")");
  return genuine;
}

std::vector<FaithfulnessRow> faithfulnessOnPairs(nn::BackboneImpl& model, const std::string& label,
                                                 const data::PairSet& set, int n,
                                                 const CamOptions& cam_options,
                                                 const FaithfulnessOptions& o) {
  const std::vector<size_t> genuine = faithfulnessPairs(set, n);
  CamOptions co = cam_options;
  if (co.layers.empty()) co.layers = model.stageOutputs();
  std::vector<std::string> names = co.layers;
  if (names.size() > 1) names.push_back("mean");

  struct Sum {
    double target = 0, del = 0, ins = 0, most = 0, least = 0, combined = 0, drop = 0, inc = 0;
    int drop_n = 0;
  };
  std::vector<Sum> sums(names.size());
  const bool was_training = model.is_training();
  model.eval();
  int done = 0;
  try {
    for (int i = 0; i < n; ++i) {
      const size_t p = genuine[static_cast<size_t>(i) * genuine.size() / static_cast<size_t>(n)];
      auto decode = [&](size_t k) {
        return data::faceTensor(
            data::decodeFace(set.images[k], set.path + " image " + std::to_string(k)));
      };
      const auto a = decode(2 * p), b = decode(2 * p + 1);
      const auto target = cosineTarget(model, b);
      const auto cams = computeCams(model, a, target, co);
      const ScoreFunction score = [&](const at::Tensor& x) {
        torch::NoGradGuard no_grad;
        return target.score(model.forward(x));
      };
      FaithfulnessOptions oi = o;
      oi.seed = splitmix(o.seed) ^ splitmix(0x5eedULL + static_cast<uint64_t>(i));
      for (size_t l = 0; l < names.size(); ++l) {
        const cv::Mat map = l < cams.cams.size() ? cams.cams[l] : cams.average();
        const auto f = measureFaithfulness(score, a, map, oi);
        auto& s = sums[l];
        s.target += f.target;
        s.del += f.deletion.auc;
        s.ins += f.insertion.auc;
        auto mean = [](const std::vector<double>& v) {
          return v.empty()
                     ? kNaN
                     : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
        };
        s.most += mean(f.road_most);
        s.least += mean(f.road_least);
        s.combined += f.road_combined;
        if (!std::isnan(f.drop)) {
          s.drop += f.drop;
          ++s.drop_n;
        }
        s.inc += f.increase;
      }
      ++done;
      if (o.progress && !o.progress(done, n)) break;
    }
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  std::vector<FaithfulnessRow> rows;
  const double d = done > 0 ? static_cast<double>(done) : kNaN;
  for (size_t l = 0; l < names.size(); ++l) {
    const auto& s = sums[l];
    FaithfulnessRow row;
    row.model = label;
    row.layer = names[l];
    row.method = camMethodName(co.method);
    row.pairs = done;
    row.target = s.target / d;
    row.deletion_auc = s.del / d;  // NaN sums stay NaN: metrics not measured
    row.insertion_auc = s.ins / d;
    row.road_most = s.most / d;
    row.road_least = s.least / d;
    row.road_combined = s.combined / d;
    row.drop = s.drop_n > 0 ? s.drop / s.drop_n : kNaN;
    row.increase = s.inc / d;
    rows.push_back(row);
  }
  return rows;
}

}  // namespace msconv::inspect
