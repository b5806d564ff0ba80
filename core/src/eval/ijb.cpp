#include "msconv/eval/ijb.h"

#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "msconv/data/image.h"
#include "msconv/error.h"
#include "msconv/eval/verification.h"
#include "msconv/nn/backbone.h"
#include "util/big_buffer.h"

namespace msconv::eval {
namespace {

float dotScalar(const float* x, const float* y, int64_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= d; i += 4) {
    s0 += x[i] * y[i];
    s1 += x[i + 1] * y[i + 1];
    s2 += x[i + 2] * y[i + 2];
    s3 += x[i + 3] * y[i + 3];
  }
  for (; i < d; ++i) s0 += x[i] * y[i];
  return (s0 + s1) + (s2 + s3);
}

__attribute__((target("avx2,fma"))) float dotAvx2(const float* x, const float* y, int64_t d) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= d; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
  }
  for (; i + 8 <= d; i += 8)
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
  const __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
  float r = _mm_cvtss_f32(h);
  for (; i < d; ++i) r += x[i] * y[i];
  return r;
}

__attribute__((target("avx512f"))) float dotAvx512(const float* x, const float* y, int64_t d) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= d; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
  }
  for (; i + 16 <= d; i += 16)
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
  // The lanes summed by halves, as _mm512_reduce_add_ps does (whose GCC 12 expansion warns of an
  // uninitialised temporary, GCC bug 105593).
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, _mm512_add_ps(a0, a1));
  for (int w = 8; w >= 1; w /= 2)
    for (int k = 0; k < w; ++k) lanes[k] += lanes[k + w];
  float r = lanes[0];
  for (; i < d; ++i) r += x[i] * y[i];
  return r;
}

using DotFn = float (*)(const float*, const float*, int64_t);

DotFn bestDot() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return dotAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dotAvx2;
  return dotScalar;
}

}  // namespace

int64_t Templates::row(int64_t id) const {
  const auto it = std::lower_bound(ids.begin(), ids.end(), id);
  return it != ids.end() && *it == id ? it - ids.begin() : -1;
}

Templates aggregateTemplates(const at::Tensor& images, const std::vector<data::IjbFace>& faces,
                             const TemplateOptions& options) {
  if (images.dim() != 2 || images.size(0) != static_cast<int64_t>(faces.size()))
    throw Error("IJB templates: " + std::to_string(images.size(0)) + " image features for " +
                std::to_string(faces.size()) + " faces");
  auto f = images.to(torch::kFloat64).contiguous();
  const auto bad = torch::isfinite(f).all(1).logical_not().nonzero();
  if (bad.size(0) > 0)
    throw Error("IJB templates: the feature of image " + faces[bad[0][0].item<int64_t>()].image +
                " is NaN or infinite");
  if (options.normalise_images)
    f = torch::nn::functional::normalize(f, torch::nn::functional::NormalizeFuncOptions().dim(1));
  if (options.detector_score) {
    std::vector<double> s;
    for (const auto& face : faces) s.push_back(face.score);
    f = f * torch::tensor(s, torch::kFloat64).view({-1, 1});
  }
  // Mean per media, sum of medias per template.
  std::map<int64_t, std::map<int64_t, std::vector<int64_t>>> groups;
  for (size_t i = 0; i < faces.size(); ++i)
    groups[faces[i].template_id][faces[i].media_id].push_back(static_cast<int64_t>(i));
  Templates t;
  auto out = torch::zeros({static_cast<int64_t>(groups.size()), f.size(1)}, torch::kFloat64);
  int64_t row = 0;
  for (const auto& [tid, medias] : groups) {
    auto acc = out[row];
    for (const auto& [mid, idx] : medias)
      acc += f.index_select(0, torch::tensor(idx, torch::kLong)).mean(0);
    const double norm = acc.norm().item<double>();
    if (!(norm > 0))
      throw Error("IJB templates: template " + std::to_string(tid) + " has a zero feature");
    acc /= norm;
    t.ids.push_back(tid);
    ++row;
  }
  t.features = out.to(torch::kFloat);
  return t;
}

namespace {

// Pairs packed as row a << 33 | row b << 1 | label (rows below 2^31).
constexpr uint64_t packPair(int64_t a, int64_t b, bool label) {
  return static_cast<uint64_t>(a) << 33 | static_cast<uint64_t>(b) << 1 | (label ? 1u : 0u);
}

// Pairs grouped by (row block of a, row block of b) so that a tile's rows (2 x 256 rows of 512
// floats) stay in cache while its pairs are scored: a counting sort (per-thread histograms,
// stable scatter) moves the packed pairs into tile order in `sorted`; inside a tile, pairs are
// ordered by row a as they are scored, so each a row is read once from cache per tile. Then
// emit(k, score, label) for every pair, k its position in tile order.
template <typename Emit>
void scoreTiled(const float* features, int64_t rows, int64_t dim, const uint64_t* pairs, int64_t n,
                uint64_t* sorted, Emit emit) {
  static const DotFn dot = bestDot();
  const int64_t block = std::max<int64_t>(16, (256 * 512) / std::max<int64_t>(1, dim));
  const int64_t nb = (rows + block - 1) / block, tiles = nb * nb;
  auto tileOf = [&](uint64_t p) {
    return static_cast<int64_t>(p >> 33) / block * nb +
           static_cast<int64_t>((p >> 1) & 0xffffffffu) / block;
  };
  const int chunks = std::max(1, std::min<int>(at::get_num_threads(), 16));
  const int64_t per = (n + chunks - 1) / chunks;
  std::vector<std::vector<int64_t>> off(chunks, std::vector<int64_t>(tiles, 0));
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t i = c * per, e = std::min(n, (c + 1) * per); i < e; ++i)
        ++off[c][tileOf(pairs[i])];
  });
  std::vector<int64_t> start(tiles + 1, 0);
  int64_t sum = 0;
  for (int64_t t = 0; t < tiles; ++t) {
    start[t] = sum;
    for (int c = 0; c < chunks; ++c) {
      const int64_t k = off[c][t];
      off[c][t] = sum;
      sum += k;
    }
  }
  start[tiles] = sum;
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t i = c * per, e = std::min(n, (c + 1) * per); i < e; ++i)
        sorted[off[c][tileOf(pairs[i])]++] = pairs[i];
  });
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<uint64_t> local;
    std::vector<int32_t> count(block + 1);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b0 = start[t], m = start[t + 1] - b0;
      // By row a inside the tile (a counting sort on a's offset in its block).
      local.resize(m);
      std::fill(count.begin(), count.end(), 0);
      for (int64_t k = 0; k < m; ++k) ++count[(sorted[b0 + k] >> 33) % block + 1];
      for (int64_t r = 0; r < block; ++r) count[r + 1] += count[r];
      for (int64_t k = 0; k < m; ++k)
        local[count[(sorted[b0 + k] >> 33) % block]++] = sorted[b0 + k];
      for (int64_t k = 0; k < m; ++k) {
        const uint64_t p = local[k];
        emit(b0 + k,
             dot(features + (p >> 33) * dim, features + ((p >> 1) & 0xffffffffu) * dim, dim),
             static_cast<bool>(p & 1));
      }
    }
  });
}

}  // namespace

void scorePairs(const float* features, int64_t rows, int64_t dim, const int32_t* a,
                const int32_t* b, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i)
    if (a[i] < 0 || a[i] >= rows || b[i] < 0 || b[i] >= rows)
      throw Error("IJB scores: pair " + std::to_string(i) + " names row " +
                  std::to_string(a[i] < 0 || a[i] >= rows ? a[i] : b[i]) + " of " +
                  std::to_string(rows));
  static const DotFn dot = bestDot();
  at::parallel_for(0, n, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      out[i] = dot(features + a[i] * dim, features + b[i] * dim, dim);
  });
}

IjbResult scoreIjb(const data::IjbSet& set, const Templates& templates) {
  IjbResult r;
  r.name = set.name;
  r.templates = static_cast<int64_t>(templates.ids.size());
  r.pairs = static_cast<int64_t>(set.pairs.size());
  const auto t0 = std::chrono::steady_clock::now();
  // Template id -> feature row: a dense table when the ids span a modest range (IJB's do).
  std::vector<int32_t> dense;
  const int64_t lo = templates.ids.empty() ? 0 : templates.ids.front();
  const int64_t span = templates.ids.empty() ? 0 : templates.ids.back() - lo + 1;
  if (span > 0 && span <= (int64_t{1} << 26)) {
    dense.assign(span, -1);
    for (size_t k = 0; k < templates.ids.size(); ++k)
      dense[templates.ids[k] - lo] = static_cast<int32_t>(k);
  }
  auto rowOf = [&](int64_t id) -> int64_t {
    if (dense.empty()) return templates.row(id);
    return id < lo || id - lo >= span ? -1 : dense[id - lo];
  };
  // Pairs packed with their labels, scored in tile order, each score turned straight into a ROC
  // item in the first buffer (the pairs are no longer needed there), which the ROC sorts using
  // the second as scratch.
  const int64_t n = r.pairs;
  util::BigBuffer<uint64_t> packed(n), sorted(n);
  at::parallel_for(0, n, 1 << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const auto& p = set.pairs[i];
      const int64_t ra = rowOf(p.t1), rb = rowOf(p.t2);
      if (ra < 0 || rb < 0)
        throw Error(set.name + " pair " + std::to_string(i + 1) + ": template " +
                    std::to_string(ra < 0 ? p.t1 : p.t2) + " has no features");
      packed[i] = packPair(ra, rb, p.label != 0);
    }
  });
  const auto feats = templates.features.contiguous();
  uint64_t* items = packed.data();
  scoreTiled(feats.data_ptr<float>(), feats.size(0), feats.size(1), packed.data(), n, sorted.data(),
             [&](int64_t k, float score, bool genuine) { items[k] = rocItem(score, genuine); });
  r.roc = rocFromItems(items, sorted.data(), n, ijbFars(), set.name + " pairs");
  r.score_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

IjbResult evaluateIjb(nn::BackboneImpl& model, const data::IjbSet& set,
                      const TemplateOptions& options, int batch, const EvalProgress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const auto params = model.parameters();
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params[0].device();
  const int64_t n = static_cast<int64_t>(set.faces.size());
  std::vector<torch::Tensor> feats;
  for (int64_t s = 0; s < n; s += batch) {
    const int64_t e = std::min<int64_t>(n, s + batch);
    auto x = torch::empty({e - s, 3, 112, 112});
    // Decoding and alignment in parallel; loadAlignedFace names the file it fails on.
    at::parallel_for(s, e, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        x[i - s].copy_(data::faceTensor(data::loadAlignedFace(set, static_cast<size_t>(i))));
    });
    x = x.to(device);
    feats.push_back(embedWithFlip(model, x).cpu());
    if (progress && !progress(e, n)) {
      model.train(was_training);
      throw Cancelled(set.root + ": evaluation cancelled");
    }
  }
  model.train(was_training);
  const Templates t = aggregateTemplates(torch::cat(feats), set.faces, options);
  const double embed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  IjbResult r = scoreIjb(set, t);
  r.features = t;
  r.faces = n;
  r.embed_seconds = embed;
  return r;
}

}  // namespace msconv::eval
