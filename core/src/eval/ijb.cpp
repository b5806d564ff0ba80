#include "msconv/eval/ijb.h"

#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "msconv/data/image.h"
#include "msconv/error.h"
#include "msconv/nn/backbone.h"

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
  float r = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
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

void scorePairs(const float* features, int64_t rows, int64_t dim, const int32_t* a,
                const int32_t* b, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i)
    if (a[i] < 0 || a[i] >= rows || b[i] < 0 || b[i] >= rows)
      throw Error("IJB scores: pair " + std::to_string(i) + " names row " +
                  std::to_string(a[i] < 0 || a[i] >= rows ? a[i] : b[i]) + " of " +
                  std::to_string(rows));
  static const DotFn dot = bestDot();
  // Pairs grouped by (row block of a, row block of b): a tile's rows (2 x 256 x dim floats) stay
  // in cache while all of its pairs are scored. Counting sort of pair indices by tile.
  const int64_t block = std::max<int64_t>(16, (256 * 512) / std::max<int64_t>(1, dim));
  const int64_t nb = (rows + block - 1) / block;
  std::vector<int64_t> start(nb * nb + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++start[(a[i] / block) * nb + b[i] / block + 1];
  for (int64_t t = 0; t < nb * nb; ++t) start[t + 1] += start[t];
  std::vector<int32_t> order(n);
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < n; ++i) order[fill[(a[i] / block) * nb + b[i] / block]++] = i;
  }
  at::parallel_for(0, nb * nb, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t i = start[t0]; i < start[t1]; ++i) {
      const int32_t p = order[i];
      out[p] = dot(features + a[p] * dim, features + b[p] * dim, dim);
    }
  });
}

IjbResult scoreIjb(const data::IjbSet& set, const Templates& templates) {
  IjbResult r;
  r.name = set.name;
  r.templates = static_cast<int64_t>(templates.ids.size());
  r.pairs = static_cast<int64_t>(set.pairs.size());
  std::vector<int32_t> a(r.pairs), b(r.pairs);
  std::vector<uint8_t> labels(r.pairs);
  for (int64_t i = 0; i < r.pairs; ++i) {
    const auto& p = set.pairs[i];
    const int64_t ra = templates.row(p.t1), rb = templates.row(p.t2);
    if (ra < 0 || rb < 0)
      throw Error(set.name + " pair " + std::to_string(i + 1) + ": template " +
                  std::to_string(ra < 0 ? p.t1 : p.t2) + " has no features");
    a[i] = static_cast<int32_t>(ra), b[i] = static_cast<int32_t>(rb);
    labels[i] = p.label ? 1 : 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<float> scores(r.pairs);
  const auto feats = templates.features.contiguous();
  scorePairs(feats.data_ptr<float>(), feats.size(0), feats.size(1), a.data(), b.data(), r.pairs,
             scores.data());
  r.roc = computeRoc(scores.data(), labels.data(), r.pairs, ijbFars(), set.name + " pairs");
  r.score_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

IjbResult evaluateIjb(nn::BackboneImpl& model, const data::IjbSet& set,
                      const TemplateOptions& options, int batch) {
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
    feats.push_back((model.forward(x) + model.forward(x.flip({3}))).cpu());
  }
  model.train(was_training);
  const Templates t = aggregateTemplates(torch::cat(feats), set.faces, options);
  const double embed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  IjbResult r = scoreIjb(set, t);
  r.faces = n;
  r.embed_seconds = embed;
  return r;
}

}  // namespace msconv::eval
