#include "msconv/nn/bn_prelu.h"

#include "msconv/nn/kernel_switch.h"
#include "msconv/nn/layers.h"
#include "nn/cpu_isa.h"

#include <ATen/Parallel.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace msconv::nn {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// ---- Kernels -----------------------------------------------------------------------------------
// Plain loops (always inlined) compiled three times, inside AVX-512, AVX2 and plain wrappers, as
// fusion.cpp does. The activation is a select on z = BN(x) with one slope per channel: the PReLU
// slope (shared: the same in every channel), 0 for ReLU, 1 for none.

#define MSCONV_INLINE inline __attribute__((always_inline))

// The plane kernels take np planes of len floats each, st floats apart (one channel's planes in
// NCHW: st = C * H * W), so that small maps (4 x 4) are not a call and a merge per 16 floats.

// Planes up to this size (the 4 x 4 and 7 x 7 maps) are summed across planes element-wise first:
// one horizontal sum per chunk, not one per 16 floats.
constexpr int64_t kSmallPlane = 64;

// Mean and sum of squared deviations: a float pass for a provisional mean, a second one (in
// cache) for the centred sums, corrected in double.
MSCONV_INLINE void segMoments(const float* x, int64_t np, int64_t st, int64_t len, double* mean,
                              double* m2) {
  const bool small = np > 1 && len <= kSmallPlane;
  float s = 0.f;
  if (small) {
    float acc[kSmallPlane] = {};
    for (int64_t p = 0; p < np; ++p) {
      const float* __restrict__ xp = x + p * st;
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) acc[i] += xp[i];
    }
    for (int64_t i = 0; i < len; ++i) s += acc[i];
  } else {
    for (int64_t p = 0; p < np; ++p) {
      const float* __restrict__ xp = x + p * st;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < len; ++i) s += xp[i];
    }
  }
  const double n = static_cast<double>(np * len);
  const float c = s / static_cast<float>(n);
  float d = 0.f, q = 0.f;
  if (small) {
    float ad[kSmallPlane] = {}, aq[kSmallPlane] = {};
    for (int64_t p = 0; p < np; ++p) {
      const float* __restrict__ xp = x + p * st;
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) {
        const float v = xp[i] - c;
        ad[i] += v;
        aq[i] += v * v;
      }
    }
    for (int64_t i = 0; i < len; ++i) d += ad[i], q += aq[i];
  } else {
    for (int64_t p = 0; p < np; ++p) {
      const float* __restrict__ xp = x + p * st;
#pragma omp simd reduction(+ : d, q)
      for (int64_t i = 0; i < len; ++i) {
        const float v = xp[i] - c;
        d += v;
        q += v * v;
      }
    }
  }
  const double dd = d;
  *mean = c + dd / n;
  *m2 = std::max(0.0, static_cast<double>(q) - dd * dd / n);
}

MSCONV_INLINE void segForward(const float* x, float* y, int64_t np, int64_t st, int64_t len,
                              float sc, float sh, float a) {
  for (int64_t p = 0; p < np; ++p) {
    const float* __restrict__ xp = x + p * st;
    float* __restrict__ yp = y + p * st;
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      const float z = xp[i] * sc + sh;
      yp[i] = z > 0.f ? z : a * z;
    }
  }
}

// out[0] = sum(dz), out[1] = sum(dz * (x - mu)), out[2] = sum(g * z where z <= 0).
MSCONV_INLINE void segBackSums(const float* x, const float* g, int64_t np, int64_t st, int64_t len,
                               float sc, float sh, float a, float mu, float* out) {
  float sd = 0.f, sx = 0.f, sa = 0.f;
  if (np > 1 && len <= kSmallPlane) {
    float ad[kSmallPlane] = {}, ax[kSmallPlane] = {}, aa[kSmallPlane] = {};
    for (int64_t p = 0; p < np; ++p) {
      const float* __restrict__ xp = x + p * st;
      const float* __restrict__ gp = g + p * st;
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) {
        const float v = xp[i], gi = gp[i];
        const float z = v * sc + sh;
        const bool pos = z > 0.f;
        const float dz = pos ? gi : a * gi;
        ad[i] += dz;
        ax[i] += dz * (v - mu);
        aa[i] += pos ? 0.f : gi * z;
      }
    }
    for (int64_t i = 0; i < len; ++i) sd += ad[i], sx += ax[i], sa += aa[i];
    out[0] = sd, out[1] = sx, out[2] = sa;
    return;
  }
  for (int64_t p = 0; p < np; ++p) {
    const float* __restrict__ xp = x + p * st;
    const float* __restrict__ gp = g + p * st;
#pragma omp simd reduction(+ : sd, sx, sa)
    for (int64_t i = 0; i < len; ++i) {
      const float v = xp[i], gi = gp[i];
      const float z = v * sc + sh;
      const bool pos = z > 0.f;
      const float dz = pos ? gi : a * gi;
      sd += dz;
      sx += dz * (v - mu);
      sa += pos ? 0.f : gi * z;
    }
  }
  out[0] = sd, out[1] = sx, out[2] = sa;
}

MSCONV_INLINE void segInputGrad(const float* x, const float* g, float* gx, int64_t np, int64_t st,
                                int64_t len, float sc, float sh, float a, float mu, float k1,
                                float mdz, float coef) {
  for (int64_t p = 0; p < np; ++p) {
    const float* __restrict__ xp = x + p * st;
    const float* __restrict__ gp = g + p * st;
    float* __restrict__ o = gx + p * st;
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      const float v = xp[i], gi = gp[i];
      const float z = v * sc + sh;
      const float dz = z > 0.f ? gi : a * gi;
      o[i] = k1 * (dz - mdz - (v - mu) * coef);
    }
  }
}

// Rows [0, r) of C floats: per-channel sums of v = x - K and of v * v (K: a per-channel shift
// near the mean, so that the variance does not come from the difference of large sums).
MSCONV_INLINE void rowsShiftedSums(const float* __restrict__ x, int64_t r, int64_t C,
                                   const float* __restrict__ K, float* __restrict__ s1,
                                   float* __restrict__ s2) {
  for (int64_t j = 0; j < C; ++j) s1[j] = 0.f, s2[j] = 0.f;
  for (int64_t i = 0; i < r; ++i) {
    const float* xr = x + i * C;
#pragma omp simd
    for (int64_t j = 0; j < C; ++j) {
      const float v = xr[j] - K[j];
      s1[j] += v;
      s2[j] += v * v;
    }
  }
}

MSCONV_INLINE void rowsForward(const float* __restrict__ x, float* __restrict__ y, int64_t r,
                               int64_t C, const float* __restrict__ sc,
                               const float* __restrict__ sh, const float* __restrict__ a) {
  for (int64_t i = 0; i < r; ++i) {
    const float* xr = x + i * C;
    float* yr = y + i * C;
#pragma omp simd
    for (int64_t j = 0; j < C; ++j) {
      const float z = xr[j] * sc[j] + sh[j];
      yr[j] = z > 0.f ? z : a[j] * z;
    }
  }
}

// Adds to per-channel float sums sd, sx, sa over rows [0, r) (segBackSums' three sums).
MSCONV_INLINE void rowsBackSums(const float* __restrict__ x, const float* __restrict__ g, int64_t r,
                                int64_t C, const float* __restrict__ sc,
                                const float* __restrict__ sh, const float* __restrict__ a,
                                const float* __restrict__ mu, float* __restrict__ sd,
                                float* __restrict__ sx, float* __restrict__ sa) {
  for (int64_t i = 0; i < r; ++i) {
    const float* xr = x + i * C;
    const float* gr = g + i * C;
#pragma omp simd
    for (int64_t j = 0; j < C; ++j) {
      const float v = xr[j], gi = gr[j];
      const float z = v * sc[j] + sh[j];
      const bool pos = z > 0.f;
      const float dz = pos ? gi : a[j] * gi;
      sd[j] += dz;
      sx[j] += dz * (v - mu[j]);
      sa[j] += pos ? 0.f : gi * z;
    }
  }
}

// p: per-channel constants, 7 arrays of C: sc, sh, a, mu, k1, mdz, coef.
MSCONV_INLINE void rowsInputGrad(const float* __restrict__ x, const float* __restrict__ g,
                                 float* __restrict__ gx, int64_t r, int64_t C,
                                 const float* __restrict__ p) {
  const float* __restrict__ sc = p;
  const float* __restrict__ sh = p + C;
  const float* __restrict__ a = p + 2 * C;
  const float* __restrict__ mu = p + 3 * C;
  const float* __restrict__ k1 = p + 4 * C;
  const float* __restrict__ mdz = p + 5 * C;
  const float* __restrict__ coef = p + 6 * C;
  for (int64_t i = 0; i < r; ++i) {
    const float* xr = x + i * C;
    const float* gr = g + i * C;
    float* o = gx + i * C;
#pragma omp simd
    for (int64_t j = 0; j < C; ++j) {
      const float v = xr[j], gi = gr[j];
      const float z = v * sc[j] + sh[j];
      const float dz = z > 0.f ? gi : a[j] * gi;
      o[j] = k1[j] * (dz - mdz[j] - (v - mu[j]) * coef[j]);
    }
  }
}

struct Kernels {
  void (*segMoments)(const float*, int64_t, int64_t, int64_t, double*, double*);
  void (*segForward)(const float*, float*, int64_t, int64_t, int64_t, float, float, float);
  void (*segBackSums)(const float*, const float*, int64_t, int64_t, int64_t, float, float, float,
                      float, float*);
  void (*segInputGrad)(const float*, const float*, float*, int64_t, int64_t, int64_t, float, float,
                       float, float, float, float, float);
  void (*rowsShiftedSums)(const float*, int64_t, int64_t, const float*, float*, float*);
  void (*rowsForward)(const float*, float*, int64_t, int64_t, const float*, const float*,
                      const float*);
  void (*rowsBackSums)(const float*, const float*, int64_t, int64_t, const float*, const float*,
                       const float*, const float*, float*, float*, float*);
  void (*rowsInputGrad)(const float*, const float*, float*, int64_t, int64_t, const float*);
};

#define MSCONV_BN_KERNELS(NS, ATTR)                                                              \
  namespace NS {                                                                                 \
  ATTR void segM(const float* x, int64_t np, int64_t st, int64_t len, double* m, double* q) {    \
    segMoments(x, np, st, len, m, q);                                                            \
  }                                                                                              \
  ATTR void segF(const float* x, float* y, int64_t np, int64_t st, int64_t len, float sc,        \
                 float sh, float a) {                                                            \
    segForward(x, y, np, st, len, sc, sh, a);                                                    \
  }                                                                                              \
  ATTR void segB(const float* x, const float* g, int64_t np, int64_t st, int64_t len, float sc,  \
                 float sh, float a, float mu, float* out) {                                      \
    segBackSums(x, g, np, st, len, sc, sh, a, mu, out);                                          \
  }                                                                                              \
  ATTR void segI(const float* x, const float* g, float* gx, int64_t np, int64_t st, int64_t len, \
                 float sc, float sh, float a, float mu, float k1, float mdz, float coef) {       \
    segInputGrad(x, g, gx, np, st, len, sc, sh, a, mu, k1, mdz, coef);                           \
  }                                                                                              \
  ATTR void rowsM(const float* x, int64_t r, int64_t C, const float* K, float* s1, float* s2) {  \
    rowsShiftedSums(x, r, C, K, s1, s2);                                                         \
  }                                                                                              \
  ATTR void rowsF(const float* x, float* y, int64_t r, int64_t C, const float* sc,               \
                  const float* sh, const float* a) {                                             \
    rowsForward(x, y, r, C, sc, sh, a);                                                          \
  }                                                                                              \
  ATTR void rowsB(const float* x, const float* g, int64_t r, int64_t C, const float* sc,         \
                  const float* sh, const float* a, const float* mu, float* sd, float* sx,        \
                  float* sa) {                                                                   \
    rowsBackSums(x, g, r, C, sc, sh, a, mu, sd, sx, sa);                                         \
  }                                                                                              \
  ATTR void rowsI(const float* x, const float* g, float* gx, int64_t r, int64_t C,               \
                  const float* p) {                                                              \
    rowsInputGrad(x, g, gx, r, C, p);                                                            \
  }                                                                                              \
  const Kernels table{segM, segF, segB, segI, rowsM, rowsF, rowsB, rowsI};                       \
  }

MSCONV_BN_KERNELS(avx512, __attribute__((target("avx512f,avx512vl,avx2,fma"))))
MSCONV_BN_KERNELS(avx2, __attribute__((target("avx2,fma"))))
MSCONV_BN_KERNELS(generic, )

const Kernels& kernels() {
  static const Kernels* k = widestIsa(&avx512::table, &avx2::table, &generic::table);
  return *k;
}

// ---- Shapes ------------------------------------------------------------------------------------

// rows: N * S rows of C floats (channels-last, 2-d, or 1x1 maps); otherwise N x C planes of S.
struct Geometry {
  bool rows;
  int64_t N, C, S;
  int64_t count() const { return N * S; }
};

Geometry geometry(const torch::Tensor& x) {
  Geometry g;
  g.N = x.size(0);
  g.C = x.size(1);
  g.S = x.numel() / (g.N * g.C);
  g.rows = x.dim() == 2 || g.S == 1 || !x.is_contiguous();
  return g;
}

// Floats per float-accumulated segment of a plane; floats per row block (channels-last: at least
// 64 rows). Both fixed: the reductions' order does not depend on the thread count.
constexpr int64_t kSeg = 4096;
constexpr int64_t kBlock = 16384;
// Work per parallel task, in floats.
constexpr int64_t kGrain = 32768;

// One channel's N planes of S floats in float-summed chunks of about kSeg floats: f(n0, np, o,
// len) for planes [n0, n0 + np), floats [o, o + len) of each. A fixed split, whatever the threads.
template <typename F>
void forChunks(int64_t N, int64_t S, F&& f) {
  if (S >= kSeg) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < S; o += kSeg) f(n, 1, o, std::min(kSeg, S - o));
    return;
  }
  const int64_t group = kSeg / S;
  for (int64_t n0 = 0; n0 < N; n0 += group) f(n0, std::min(group, N - n0), 0, S);
}

int64_t blockRows(int64_t C) {
  return std::max<int64_t>(64, kBlock / C);
}

// Chan's merge of (count, mean, M2) summaries.
struct Moments {
  double n = 0, mean = 0, m2 = 0;
  void add(double nb, double mb, double m2b) {
    const double total = n + nb, delta = mb - mean;
    mean += delta * nb / total;
    m2 += m2b + delta * delta * n * nb / total;
    n = total;
  }
};

// The per-channel slope of the select: PReLU's (shared or per channel), 0 (ReLU), 1 (none).
std::vector<float> slopes(BnAct act, const torch::Tensor& slope, int64_t C) {
  if (act == BnAct::kNone) return std::vector<float>(static_cast<size_t>(C), 1.f);
  if (act == BnAct::kReLU) return std::vector<float>(static_cast<size_t>(C), 0.f);
  const float* p = slope.data_ptr<float>();
  std::vector<float> a(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) a[static_cast<size_t>(c)] = slope.numel() == 1 ? p[0] : p[c];
  return a;
}

class BnActFunction : public torch::autograd::Function<BnActFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& slope, const torch::Tensor& running_mean,
                               const torch::Tensor& running_var, int64_t act, double momentum,
                               double eps) {
    const Kernels& k = kernels();
    const Geometry geo = geometry(x);
    const int64_t N = geo.N, C = geo.C, S = geo.S;
    const double count = static_cast<double>(geo.count());
    const auto a = slopes(static_cast<BnAct>(act), slope, C);
    auto y = torch::empty_like(x);
    auto mean = torch::empty({C}, x.options());
    auto invstd = torch::empty({C}, x.options());
    const float* px = x.data_ptr<float>();
    const float* pw = weight.data_ptr<float>();
    const float* pb = bias.data_ptr<float>();
    float* py = y.data_ptr<float>();
    float* pm = mean.data_ptr<float>();
    float* pi = invstd.data_ptr<float>();
    float* prm = running_mean.data_ptr<float>();
    float* prv = running_var.data_ptr<float>();
    // The channel's statistics from its merged moments: saved mean and invstd, running update.
    auto finish = [&](int64_t c, const Moments& m) {
      const double var = m.m2 / count;
      pm[c] = static_cast<float>(m.mean);
      pi[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
      prm[c] = static_cast<float>(momentum * m.mean + (1 - momentum) * prm[c]);
      prv[c] = static_cast<float>(momentum * (m.m2 / (count - 1)) + (1 - momentum) * prv[c]);
    };
    if (!geo.rows) {
      // Per channel: statistics, then the output while the channel's planes are still in cache.
      at::parallel_for(
          0, C, std::max<int64_t>(1, kGrain / geo.count()), [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) {
              Moments m;
              forChunks(N, S, [&](int64_t n0, int64_t np, int64_t o, int64_t len) {
                double cm, cq;
                k.segMoments(px + (n0 * C + c) * S + o, np, C * S, len, &cm, &cq);
                m.add(static_cast<double>(np * len), cm, cq);
              });
              finish(c, m);
              const float sc = pi[c] * pw[c], sh = pb[c] - pm[c] * sc;
              k.segForward(px + c * S, py + c * S, N, C * S, S, sc, sh, a[static_cast<size_t>(c)]);
            }
          });
    } else {
      const int64_t W = C, R = geo.count();  // rows of W = C floats
      const int64_t B = blockRows(W), nb = (R + B - 1) / B;
      const int64_t grain = std::max<int64_t>(1, kGrain / (B * W));
      // The shift: each channel's mean over the first block.
      std::vector<float> Kc(static_cast<size_t>(C));
      {
        const int64_t r = std::min(B, R);
        std::vector<double> acc(static_cast<size_t>(C), 0.0);
        for (int64_t i = 0; i < r; ++i)
          for (int64_t j = 0; j < W; ++j) acc[static_cast<size_t>(j)] += px[i * W + j];
        for (int64_t c = 0; c < C; ++c)
          Kc[static_cast<size_t>(c)] = static_cast<float>(acc[static_cast<size_t>(c)] / r);
      }
      const auto& K = Kc;
      std::vector<double> part(static_cast<size_t>(2 * nb * W));
      at::parallel_for(0, nb, grain, [&](int64_t b0, int64_t b1) {
        std::vector<float> s1(static_cast<size_t>(W)), s2(static_cast<size_t>(W));
        for (int64_t b = b0; b < b1; ++b) {
          k.rowsShiftedSums(px + b * B * W, std::min(B, R - b * B), W, K.data(), s1.data(),
                            s2.data());
          std::copy(s1.begin(), s1.end(), part.begin() + 2 * b * W);
          std::copy(s2.begin(), s2.end(), part.begin() + (2 * b + 1) * W);
        }
      });
      // Block sums added in block order.
      std::vector<double> S1(static_cast<size_t>(C), 0.0), S2(static_cast<size_t>(C), 0.0);
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t j = 0; j < W; ++j) {
          S1[static_cast<size_t>(j)] += part[static_cast<size_t>(2 * b * W + j)];
          S2[static_cast<size_t>(j)] += part[static_cast<size_t>((2 * b + 1) * W + j)];
        }
      std::vector<float> sc(static_cast<size_t>(C)), sh(static_cast<size_t>(C));
      for (int64_t c = 0; c < C; ++c) {
        const size_t i = static_cast<size_t>(c);
        Moments m;
        m.n = count;
        m.mean = Kc[i] + S1[i] / count;
        m.m2 = std::max(0.0, S2[i] - S1[i] * S1[i] / count);
        finish(c, m);
        sc[i] = pi[c] * pw[c];
        sh[i] = pb[c] - pm[c] * sc[i];
      }
      at::parallel_for(0, nb, grain, [&](int64_t b0, int64_t b1) {
        const int64_t r0 = b0 * B, r1 = std::min(R, b1 * B);
        k.rowsForward(px + r0 * W, py + r0 * W, r1 - r0, W, sc.data(), sh.data(), a.data());
      });
    }
    ctx->save_for_backward({x, weight, bias, slope, mean, invstd});
    ctx->saved_data["act"] = act;
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &bias = saved[2], &slope = saved[3],
               &mean = saved[4], &invstd = saved[5];
    const auto act = static_cast<BnAct>(ctx->saved_data["act"].toInt());
    const bool need_x = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1),
               need_b = ctx->needs_input_grad(2),
               need_a = act == BnAct::kPReLU && ctx->needs_input_grad(3);
    const Kernels& k = kernels();
    const Geometry geo = geometry(x);
    const int64_t N = geo.N, C = geo.C, S = geo.S;
    const double count = static_cast<double>(geo.count());
    torch::Tensor g = grads[0];
    if (g.strides() != x.strides()) g = torch::empty_like(x).copy_(g);
    const auto a = slopes(act, slope, C);
    const float* px = x.data_ptr<float>();
    const float* pg = g.data_ptr<float>();
    const float* pw = weight.data_ptr<float>();
    const float* pb = bias.data_ptr<float>();
    const float* pm = mean.data_ptr<float>();
    const float* pi = invstd.data_ptr<float>();
    // Per channel: sum(dz), sum(dz * (x - mean)), the slope's sum.
    std::vector<double> sd(static_cast<size_t>(C)), sx(static_cast<size_t>(C)),
        sa(static_cast<size_t>(C));
    torch::Tensor gx;
    if (need_x) gx = torch::empty_like(x);
    float* pgx = need_x ? gx.data_ptr<float>() : nullptr;
    // dx = k1 * (dz - mdz - (x - mean) * coef), LibTorch's form.
    auto constants = [&](int64_t c, float* k1, float* mdz, float* coef) {
      const size_t i = static_cast<size_t>(c);
      *k1 = pi[c] * pw[c];
      *mdz = static_cast<float>(sd[i] / count);
      *coef = static_cast<float>(sx[i]) * pi[c] * pi[c] / static_cast<float>(count);
    };
    if (!geo.rows) {
      at::parallel_for(
          0, C, std::max<int64_t>(1, kGrain / geo.count()), [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) {
              const size_t ci = static_cast<size_t>(c);
              const float sc = pi[c] * pw[c], sh = pb[c] - pm[c] * sc;
              double acc[3] = {0, 0, 0};
              forChunks(N, S, [&](int64_t n0, int64_t np, int64_t o, int64_t len) {
                float part[3];
                const int64_t off = (n0 * C + c) * S + o;
                k.segBackSums(px + off, pg + off, np, C * S, len, sc, sh, a[ci], pm[c], part);
                for (int j = 0; j < 3; ++j) acc[j] += part[j];
              });
              sd[ci] = acc[0], sx[ci] = acc[1], sa[ci] = acc[2];
              if (!need_x) continue;
              float k1, mdz, coef;
              constants(c, &k1, &mdz, &coef);
              k.segInputGrad(px + c * S, pg + c * S, pgx + c * S, N, C * S, S, sc, sh, a[ci], pm[c],
                             k1, mdz, coef);
            }
          });
    } else {
      const int64_t W = C, R = geo.count();  // rows of W = C floats
      const int64_t B = blockRows(W), nb = (R + B - 1) / B;
      const int64_t grain = std::max<int64_t>(1, kGrain / (B * W));
      // p: per channel sc, sh, a, mean, k1, mdz, coef (7 x C).
      std::vector<float> p(static_cast<size_t>(7 * W));
      for (int64_t j = 0; j < W; ++j) {
        const size_t i = static_cast<size_t>(j);
        const int64_t c = j;
        p[i] = pi[c] * pw[c];
        p[i + W] = pb[c] - pm[c] * p[i];
        p[i + 2 * W] = a[static_cast<size_t>(c)];
        p[i + 3 * W] = pm[c];
      }
      std::vector<double> part(static_cast<size_t>(3 * nb * W));
      at::parallel_for(0, nb, grain, [&](int64_t b0, int64_t b1) {
        std::vector<float> acc(static_cast<size_t>(3 * W));
        for (int64_t b = b0; b < b1; ++b) {
          std::fill(acc.begin(), acc.end(), 0.f);
          const int64_t r = std::min(B, R - b * B);
          k.rowsBackSums(px + b * B * W, pg + b * B * W, r, W, p.data(), p.data() + W,
                         p.data() + 2 * W, p.data() + 3 * W, acc.data(), acc.data() + W,
                         acc.data() + 2 * W);
          std::copy(acc.begin(), acc.end(), part.begin() + 3 * b * W);
        }
      });
      // Block partials summed in block order.
      for (int64_t b = 0; b < nb; ++b) {
        const double* q = part.data() + 3 * b * W;
        for (int64_t j = 0; j < W; ++j) {
          const size_t i = static_cast<size_t>(j);
          sd[i] += q[j], sx[i] += q[j + W], sa[i] += q[j + 2 * W];
        }
      }
      if (need_x) {
        for (int64_t j = 0; j < W; ++j) {
          const size_t i = static_cast<size_t>(j);
          constants(j, &p[i + 4 * W], &p[i + 5 * W], &p[i + 6 * W]);
        }
        at::parallel_for(0, nb, grain, [&](int64_t b0, int64_t b1) {
          const int64_t r0 = b0 * B, r1 = std::min(R, b1 * B);
          k.rowsInputGrad(px + r0 * W, pg + r0 * W, pgx + r0 * W, r1 - r0, W, p.data());
        });
      }
    }
    torch::Tensor gw, gb, ga;
    if (need_w) {
      gw = torch::empty_like(weight);
      float* q = gw.data_ptr<float>();
      for (int64_t c = 0; c < C; ++c)
        q[c] = static_cast<float>(sx[static_cast<size_t>(c)] * static_cast<double>(pi[c]));
    }
    if (need_b) {
      gb = torch::empty_like(bias);
      float* q = gb.data_ptr<float>();
      for (int64_t c = 0; c < C; ++c) q[c] = static_cast<float>(sd[static_cast<size_t>(c)]);
    }
    if (need_a) {
      ga = torch::empty_like(slope);
      float* q = ga.data_ptr<float>();
      if (slope.numel() == 1) {
        double total = 0;
        for (double v : sa) total += v;
        q[0] = static_cast<float>(total);
      } else {
        for (int64_t c = 0; c < C; ++c) q[c] = static_cast<float>(sa[static_cast<size_t>(c)]);
      }
    }
    return {gx,
            gw,
            gb,
            ga,
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

EnvSwitch g_enabled{"MSCONV_BN_FUSED"};

bool floatVector(const torch::Tensor& t, int64_t C) {
  return t.defined() && t.scalar_type() == torch::kFloat32 && t.device().is_cpu() && t.dim() == 1 &&
         t.size(0) == C && t.is_contiguous();
}

// The fused node for bn + act on x when every condition holds; an undefined tensor otherwise.
torch::Tensor tryFused(BatchNorm2dImpl& bn, BnAct act, const torch::Tensor& slope,
                       const torch::Tensor& x) {
  const auto& o = bn.options;
  if (!bn.is_training() || bn.folded || !o.affine() || !o.track_running_stats() || bn.sync ||
      !customKernels() || !bnActFusionEnabled() || x.dim() != 4 || !bnActFusable(x))
    return {};
  // NCHW only: channels-last needs two full passes each way, and measured at the MSNet-50 shapes
  // (batch 16, 2 threads; ./lab bench, bnPrelu/) it ran at 0.72-0.94x LibTorch's BatchNorm
  // followed by the hand-written PReLU, against 1.04-1.65x in NCHW. bnActTrain still takes it.
  if (!x.is_contiguous()) return {};
  const int64_t C = x.size(1);
  if (C != o.num_features() || !floatVector(bn.weight, C) || !floatVector(bn.bias, C) ||
      !floatVector(bn.running_mean, C) || !floatVector(bn.running_var, C) ||
      !bn.num_batches_tracked.defined())
    return {};
  if (act == BnAct::kPReLU && !(floatVector(slope, 1) || floatVector(slope, C))) return {};
  // As torch::nn::BatchNorm's forward: count the batch, then the averaging factor.
  double factor;
  {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked += 1;
    factor = o.momentum() ? *o.momentum() : 1.0 / bn.num_batches_tracked.item<double>();
  }
  return bnActTrain(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, act, slope, factor,
                    o.eps());
}

}  // namespace

bool bnActFusionEnabled() {
  return g_enabled.on();
}

void setBnActFusion(bool on) {
  g_enabled.set(on);
}

bool bnActFusable(const torch::Tensor& x) {
  if (!x.defined() || x.scalar_type() != torch::kFloat32 || !x.device().is_cpu() ||
      (x.dim() != 2 && x.dim() != 4) || x.numel() == 0)
    return false;
  if (!x.is_contiguous() && !(x.dim() == 4 && x.is_contiguous(torch::MemoryFormat::ChannelsLast)))
    return false;
  return x.numel() / x.size(1) > 1;
}

torch::Tensor bnActTrain(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias, const torch::Tensor& running_mean,
                         const torch::Tensor& running_var, BnAct act, const torch::Tensor& slope,
                         double momentum, double eps) {
  TORCH_CHECK(bnActFusable(x), "bnActTrain: unsupported input");
  // Without a slope, an empty stand-in: a custom Function's inputs must be defined tensors.
  return BnActFunction::apply(x, weight, bias, act == BnAct::kPReLU ? slope : torch::empty({0}),
                              running_mean, running_var, static_cast<int64_t>(act), momentum, eps);
}

torch::Tensor forwardBnAct(BatchNorm2dImpl& bn, PReLUImpl* act, const torch::Tensor& x) {
  const torch::Tensor y =
      tryFused(bn, act ? BnAct::kPReLU : BnAct::kNone, act ? act->weight : torch::Tensor(), x);
  if (y.defined()) return y;
  const torch::Tensor z = bn.forward(x);
  return act ? act->forward(z) : z;
}

namespace {

// The inference form's conv + folded BN [+ activation] [+ residual, then `post`] as one fused
// convolution, or an undefined tensor where it does not apply.
// conv.forwardFused; a slope per channel (oneDNN 2.6's JIT convolutions decline the PReLU
// post-op) applied after the fused convolution, bias and residual.
torch::Tensor fusedConv(CountedConv2dImpl& conv, const torch::Tensor& x, ConvEpilogue e) {
  if (!e.slope.defined() || e.slope.numel() == 1) return conv.forwardFused(x, e);
  const torch::Tensor slope = std::move(e.slope);
  e.slope = torch::Tensor();
  const torch::Tensor y = conv.forwardFused(x, e);
  return y.defined() ? preluForward(y, slope) : y;
}

torch::Tensor fusedInference(torch::nn::Sequential& seq, const torch::Tensor& x,
                             const torch::Tensor& residual, bool residual_writable,
                             PReLUImpl* post) {
  const size_t n = seq->size();
  if (seq->is_training() || (n != 2 && n != 3) || (residual.defined() && n != 2)) return {};
  auto* conv = dynamic_cast<CountedConv2dImpl*>(seq->ptr(0).get());
  auto* bn = dynamic_cast<BatchNorm2dImpl*>(seq->ptr(1).get());
  if (!conv || !bn || !bn->folded) return {};
  ConvEpilogue e;
  e.residual = residual;
  e.residual_writable = residual_writable;
  if (post) e.slope = post->weight;
  if (n == 3) {
    if (auto* p = dynamic_cast<PReLUImpl*>(seq->ptr(2).get()))
      e.slope = p->weight;
    else if (dynamic_cast<torch::nn::ReLUImpl*>(seq->ptr(2).get()))
      e.relu = true;
    else
      return {};
  }
  return fusedConv(*conv, x, e);
}

}  // namespace

torch::Tensor forwardConvFoldedAct(CountedConv2dImpl& conv, BatchNorm2dImpl& bn, PReLUImpl* act,
                                   const torch::Tensor& x) {
  if (bn.folded && !bn.is_training()) {
    ConvEpilogue e;
    if (act) e.slope = act->weight;
    const torch::Tensor y = fusedConv(conv, x, e);
    if (y.defined()) return y;
  }
  return forwardBnAct(bn, act, conv.forward(x));
}

torch::Tensor forwardConvBnAddAct(torch::nn::Sequential& seq, const torch::Tensor& x,
                                  const torch::Tensor& residual, bool residual_writable,
                                  PReLUImpl& act) {
  const torch::Tensor y = fusedInference(seq, x, residual, residual_writable, &act);
  if (y.defined()) return y;
  return act.forward(forwardConvBnAct(seq, x) + residual);
}

torch::Tensor forwardConvBnAct(torch::nn::Sequential& seq, const torch::Tensor& x) {
  const size_t n = seq->size();
  if (!seq->is_training()) {
    const torch::Tensor y = fusedInference(seq, x, {}, false, nullptr);
    return y.defined() ? y : seq->forward(x);
  }
  if ((n != 2 && n != 3) || !customKernels() || !bnActFusionEnabled()) return seq->forward(x);
  auto* bn = dynamic_cast<BatchNorm2dImpl*>(seq->ptr(1).get());
  if (!bn || !dynamic_cast<torch::nn::Conv2dImpl*>(seq->ptr(0).get())) return seq->forward(x);
  BnAct act = BnAct::kNone;
  torch::Tensor slope;
  if (n == 3) {
    if (auto* p = dynamic_cast<PReLUImpl*>(seq->ptr(2).get())) {
      act = BnAct::kPReLU;
      slope = p->weight;
    } else if (dynamic_cast<torch::nn::ReLUImpl*>(seq->ptr(2).get())) {
      act = BnAct::kReLU;
    } else {
      return seq->forward(x);
    }
  }
  auto it = seq->begin();
  const torch::Tensor h = it->forward(x);
  const torch::Tensor y = tryFused(*bn, act, slope, h);
  if (y.defined()) return y;
  // The rest of the stack as seq->forward runs it.
  torch::Tensor z = (++it)->forward(h);
  if (n == 3) z = (++it)->forward(z);
  return z;
}

}  // namespace msconv::nn
