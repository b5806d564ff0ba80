#include "msconv/nn/gate_net.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "msconv/nn/kernel_switch.h"
#include "msconv/nn/prelu.h"
#include "nn/cpu_isa.h"

namespace msconv::nn {
namespace {
namespace gate_net {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Each layer's five parameter slots in the node's input list; absent ones are empty stand-ins.
constexpr int kWeight = 0, kBias = 1, kGamma = 2, kBeta = 3, kSlope = 4, kSlots = 5;
constexpr int kHasBias = 1, kHasBn = 2;  // flag bits; the activation sits above them

bool floatCpu(const torch::Tensor& t) {
  return t.defined() && t.scalar_type() == torch::kFloat32 && t.device().is_cpu() &&
         t.is_contiguous();
}

bool vectorOf(const torch::Tensor& t, int64_t n) {
  return floatCpu(t) && t.dim() == 1 && t.size(0) == n;
}

// The layer's checks for an input of `in` channels; its output width, or -1.
int64_t layerOut(const GateLayer& l, int64_t in) {
  if (!l.conv) return -1;
  const auto& o = l.conv->options;
  const auto& w = l.conv->weight;
  if (!floatCpu(w) || w.dim() != 4 || w.size(1) != in || w.size(2) != 1 || w.size(3) != 1 ||
      o.groups() != 1 || (*o.stride())[0] != 1 || (*o.stride())[1] != 1)
    return -1;
  const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  if (!pad || (**pad)[0] != 0 || (**pad)[1] != 0) return -1;
  const int64_t out = w.size(0);
  if (l.conv->bias.defined() && !vectorOf(l.conv->bias, out)) return -1;
  if (l.bn) {
    const auto& b = *l.bn;
    const auto& bo = b.options;
    if (!b.is_training() || b.folded || b.sync || !bo.affine() || !bo.track_running_stats() ||
        bo.num_features() != out || !vectorOf(b.weight, out) || !vectorOf(b.bias, out) ||
        !vectorOf(b.running_mean, out) || !vectorOf(b.running_var, out) ||
        !b.num_batches_tracked.defined() || b.num_batches_tracked.numel() != 1 ||
        b.num_batches_tracked.scalar_type() != torch::kLong ||
        !b.num_batches_tracked.device().is_cpu())
      return -1;
  }
  if (l.act == GateLayer::Act::kPReLU && !(vectorOf(l.slope, 1) || vectorOf(l.slope, out)))
    return -1;
  return out;
}

// ---- Kernels -----------------------------------------------------------------------------------
// Loops over a block of w columns of an N x M row-major layer (pointers at the block's first
// column), always inlined into AVX-512, AVX2 and plain copies (as bn_prelu.cpp's), so that the
// selects become vector blends rather than branches on random signs.

#define MSCONV_GATE_INLINE inline __attribute__((always_inline))

// Per column: mean and sum of squared deviations, in double (two passes, as LibTorch's BatchNorm).
MSCONV_GATE_INLINE void colMoments(const float* __restrict__ z, int64_t N, int64_t M, int64_t w,
                                   double* __restrict__ mean, double* __restrict__ m2) {
  for (int64_t n = 0; n < N; ++n) {
    const float* zr = z + n * M;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) mean[j] += zr[j];
  }
  for (int64_t j = 0; j < w; ++j) mean[j] /= static_cast<double>(N);
  for (int64_t n = 0; n < N; ++n) {
    const float* zr = z + n * M;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) {
      const double d = zr[j] - mean[j];
      m2[j] += d * d;
    }
  }
}

// xhat = (z - mean) * invstd, then z = z * scale + shift, in place.
MSCONV_GATE_INLINE void colNorm(float* __restrict__ z, float* __restrict__ xh, int64_t N, int64_t M,
                                int64_t w, const float* __restrict__ mf,
                                const float* __restrict__ is, const float* __restrict__ sc,
                                const float* __restrict__ sh) {
  for (int64_t n = 0; n < N; ++n) {
    float* zr = z + n * M;
    float* xr = xh + n * M;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) {
      xr[j] = (zr[j] - mf[j]) * is[j];
      zr[j] = zr[j] * sc[j] + sh[j];
    }
  }
}

// a = z > 0 ? z : slope * z (sl null: ReLU, 0 there).
MSCONV_GATE_INLINE void colAct(const float* __restrict__ z, float* __restrict__ a, int64_t N,
                               int64_t M, int64_t w, const float* __restrict__ sl) {
  for (int64_t n = 0; n < N; ++n) {
    const float* zr = z + n * M;
    float* ar = a + n * M;
    if (sl) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) ar[j] = zr[j] > 0.f ? zr[j] : sl[j] * zr[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) ar[j] = zr[j] > 0.f ? zr[j] : 0.f;
    }
  }
}

// Through the activation, in place: d = z > 0 ? d : slope * d, and the slope's gradient per
// column, ds += z <= 0 ? z * d : 0 (sl null: ReLU, d = 0 there and no ds).
MSCONV_GATE_INLINE void colActBack(float* __restrict__ d, const float* __restrict__ z, int64_t N,
                                   int64_t M, int64_t w, const float* __restrict__ sl,
                                   float* __restrict__ ds) {
  for (int64_t n = 0; n < N; ++n) {
    float* dr = d + n * M;
    const float* zr = z + n * M;
    if (sl) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        const bool pos = zr[j] > 0.f;
        ds[j] += pos ? 0.f : zr[j] * dr[j];
        dr[j] = pos ? dr[j] : sl[j] * dr[j];
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) dr[j] = zr[j] > 0.f ? dr[j] : 0.f;
    }
  }
}

// BatchNorm's backward sums per column: sb += d, sg += d * xhat (double).
MSCONV_GATE_INLINE void colBnSums(const float* __restrict__ d, const float* __restrict__ xh,
                                  int64_t N, int64_t M, int64_t w, double* __restrict__ sb,
                                  double* __restrict__ sg) {
  for (int64_t n = 0; n < N; ++n) {
    const float* dr = d + n * M;
    const float* xr = xh + n * M;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) {
      sb[j] += dr[j];
      sg[j] += static_cast<double>(dr[j]) * xr[j];
    }
  }
}

// dY = k (dZ - mb - xhat mg), in place (k = gamma invstd, mb = mean(dZ), mg = mean(dZ xhat)).
MSCONV_GATE_INLINE void colBnInput(float* __restrict__ d, const float* __restrict__ xh, int64_t N,
                                   int64_t M, int64_t w, const float* __restrict__ k,
                                   const float* __restrict__ mb, const float* __restrict__ mg) {
  for (int64_t n = 0; n < N; ++n) {
    float* dr = d + n * M;
    const float* xr = xh + n * M;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) dr[j] = k[j] * (dr[j] - mb[j] - xr[j] * mg[j]);
  }
}

struct Kernels {
  void (*moments)(const float*, int64_t, int64_t, int64_t, double*, double*);
  void (*norm)(float*, float*, int64_t, int64_t, int64_t, const float*, const float*, const float*,
               const float*);
  void (*act)(const float*, float*, int64_t, int64_t, int64_t, const float*);
  void (*actBack)(float*, const float*, int64_t, int64_t, int64_t, const float*, float*);
  void (*bnSums)(const float*, const float*, int64_t, int64_t, int64_t, double*, double*);
  void (*bnInput)(float*, const float*, int64_t, int64_t, int64_t, const float*, const float*,
                  const float*);
};

#define MSCONV_GATE_KERNELS(NS, ATTR)                                                            \
  namespace NS {                                                                                 \
  ATTR void moments(const float* z, int64_t N, int64_t M, int64_t w, double* a, double* b) {     \
    colMoments(z, N, M, w, a, b);                                                                \
  }                                                                                              \
  ATTR void norm(float* z, float* xh, int64_t N, int64_t M, int64_t w, const float* mf,          \
                 const float* is, const float* sc, const float* sh) {                            \
    colNorm(z, xh, N, M, w, mf, is, sc, sh);                                                     \
  }                                                                                              \
  ATTR void act(const float* z, float* a, int64_t N, int64_t M, int64_t w, const float* sl) {    \
    colAct(z, a, N, M, w, sl);                                                                   \
  }                                                                                              \
  ATTR void actBack(float* d, const float* z, int64_t N, int64_t M, int64_t w, const float* sl,  \
                    float* ds) {                                                                 \
    colActBack(d, z, N, M, w, sl, ds);                                                           \
  }                                                                                              \
  ATTR void bnSums(const float* d, const float* xh, int64_t N, int64_t M, int64_t w, double* sb, \
                   double* sg) {                                                                 \
    colBnSums(d, xh, N, M, w, sb, sg);                                                           \
  }                                                                                              \
  ATTR void bnInput(float* d, const float* xh, int64_t N, int64_t M, int64_t w, const float* k,  \
                    const float* mb, const float* mg) {                                          \
    colBnInput(d, xh, N, M, w, k, mb, mg);                                                       \
  }                                                                                              \
  const Kernels table{moments, norm, act, actBack, bnSums, bnInput};                             \
  }

MSCONV_GATE_KERNELS(avx512, __attribute__((target("avx512f,avx512vl,avx2,fma"))))
MSCONV_GATE_KERNELS(avx2, __attribute__((target("avx2,fma"))))
MSCONV_GATE_KERNELS(generic, )

const Kernels& kernels() {
  static const Kernels* k = widestIsa(&avx512::table, &avx2::table, &generic::table);
  return *k;
}

// ---- The layers --------------------------------------------------------------------------------

// The activation's slope for each of M columns: the PReLU weight (shared: repeated), 0 for ReLU.
std::vector<float> slopeRow(GateLayer::Act act, const torch::Tensor& slope, int64_t M) {
  std::vector<float> row(M, 0.f);
  if (act == GateLayer::Act::kPReLU) {
    const float* sl = slope.data_ptr<float>();
    for (int64_t j = 0; j < M; ++j) row[j] = sl[slope.numel() == 1 ? 0 : j];
  }
  return row;
}

// Columns per parallel block: some 65,536 values each (a block of the N x M layer is N rows of
// it). Smaller blocks cost more than they save: with the kernels on two threads, 4,096 values per
// block made the node slower than the modules at stages 3-4 (batch 16: 0.246 vs 0.237 ms and
// 0.545 vs 0.526 ms), where the layers are a few microseconds of work beside a parallel region's
// start.
int64_t columnGrain(int64_t N) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(N, 1));
}

// One layer's forward on X (N x in): returns A = act(BN(X W^T + b)); keeps what backward needs.
struct Saved {
  torch::Tensor x, z, xhat, invstd;  // input, pre-activation, normalised (BN), 1/std (BN)
};

torch::Tensor layerForward(const torch::Tensor& x, const torch::Tensor* p, int flags,
                           BatchNorm2dImpl* bn, Saved& sv) {
  const auto& w = p[kWeight];
  const auto w2 = w.view({w.size(0), w.size(1)});
  // The same calls as the composed layer (CountedConv2d on 1x1 maps), hence the same values.
  torch::Tensor z = (flags & kHasBias) ? torch::addmm(p[kBias], x, w2.t()) : torch::mm(x, w2.t());
  const int64_t N = z.size(0), M = z.size(1);
  float* zp = z.data_ptr<float>();
  const auto act = static_cast<GateLayer::Act>(flags >> 2);
  const bool has_bn = flags & kHasBn;
  double factor = 0, eps = 0;
  if (has_bn) {
    const auto& bo = bn->options;
    eps = bo.eps();
    // As torch::nn::BatchNorm's forward: count the batch, then the averaging factor (the count
    // is a CPU long scalar, gateFusable checked: incremented in place, not as a tensor op).
    const int64_t count = ++*bn->num_batches_tracked.data_ptr<int64_t>();
    factor = bo.momentum() ? *bo.momentum() : 1.0 / static_cast<double>(count);
    sv.invstd = torch::empty({M});
    sv.xhat = torch::empty({N, M});
  }
  torch::Tensor a = act == GateLayer::Act::kNone ? z : torch::empty_like(z);
  const std::vector<float> sl = slopeRow(act, p[kSlope], M);
  float* ap = a.data_ptr<float>();
  float* is = has_bn ? sv.invstd.data_ptr<float>() : nullptr;
  float* xh = has_bn ? sv.xhat.data_ptr<float>() : nullptr;
  float* rm = has_bn ? bn->running_mean.data_ptr<float>() : nullptr;
  float* rv = has_bn ? bn->running_var.data_ptr<float>() : nullptr;
  const float* gamma = has_bn ? p[kGamma].data_ptr<float>() : nullptr;
  const float* beta = has_bn ? p[kBeta].data_ptr<float>() : nullptr;
  // Column blocks in parallel: each column's statistics, normalisation and activation are its own.
  const Kernels& k = kernels();
  at::parallel_for(0, M, columnGrain(N), [&](int64_t j0, int64_t j1) {
    const int64_t w = j1 - j0;
    if (has_bn) {
      std::vector<double> mean(w, 0.0), m2(w, 0.0);
      std::vector<float> scale(w), shift(w), mf(w);
      k.moments(zp + j0, N, M, w, mean.data(), m2.data());
      for (int64_t j = 0; j < w; ++j) {
        const int64_t c = j0 + j;
        const double var = m2[j] / static_cast<double>(N);
        is[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
        mf[j] = static_cast<float>(mean[j]);
        scale[j] = gamma[c] * is[c];
        shift[j] = beta[c] - mf[j] * scale[j];
        rm[c] = static_cast<float>(factor * mean[j] + (1 - factor) * rm[c]);
        rv[c] = static_cast<float>(factor * (m2[j] / static_cast<double>(N - 1)) +
                                   (1 - factor) * rv[c]);
      }
      k.norm(zp + j0, xh + j0, N, M, w, mf.data(), is + j0, scale.data(), shift.data());
    }
    if (act != GateLayer::Act::kNone)
      k.act(zp + j0, ap + j0, N, M, w, act == GateLayer::Act::kPReLU ? sl.data() + j0 : nullptr);
  });
  sv.x = x;
  sv.z = z;
  return a;
}

// One layer's backward from dA (N x out, overwritten): the parameters' gradients into g[slot],
// returns dX (N x in).
torch::Tensor layerBackward(torch::Tensor da, const torch::Tensor* p, int flags, const Saved& sv,
                            torch::Tensor* g) {
  const int64_t N = da.size(0), M = da.size(1);
  float* d = da.data_ptr<float>();
  const float* z = sv.z.data_ptr<float>();
  const auto act = static_cast<GateLayer::Act>(flags >> 2);
  const bool has_bn = flags & kHasBn;
  const std::vector<float> sl = slopeRow(act, p[kSlope], M);
  std::vector<float> ds(M, 0.f);  // the slope's gradient per column
  if (has_bn) {
    g[kGamma] = torch::empty({M});
    g[kBeta] = torch::empty({M});
  }
  float* gg = has_bn ? g[kGamma].data_ptr<float>() : nullptr;
  float* gb = has_bn ? g[kBeta].data_ptr<float>() : nullptr;
  const float* xh = has_bn ? sv.xhat.data_ptr<float>() : nullptr;
  const float* is = has_bn ? sv.invstd.data_ptr<float>() : nullptr;
  const float* gamma = has_bn ? p[kGamma].data_ptr<float>() : nullptr;
  const Kernels& kn = kernels();
  at::parallel_for(0, M, columnGrain(N), [&](int64_t j0, int64_t j1) {
    const int64_t w = j1 - j0;
    if (act != GateLayer::Act::kNone)
      kn.actBack(d + j0, z + j0, N, M, w, act == GateLayer::Act::kPReLU ? sl.data() + j0 : nullptr,
                 ds.data() + j0);
    if (!has_bn) return;
    // BatchNorm's training-mode backward: dY = gamma invstd (dZ - mean(dZ) - xhat mean(dZ xhat)).
    std::vector<double> sb(w, 0.0), sg(w, 0.0);
    kn.bnSums(d + j0, xh + j0, N, M, w, sb.data(), sg.data());
    std::vector<float> k(w), mb(w), mg(w);
    for (int64_t j = 0; j < w; ++j) {
      const int64_t c = j0 + j;
      gg[c] = static_cast<float>(sg[j]);
      gb[c] = static_cast<float>(sb[j]);
      k[j] = gamma[c] * is[c];
      mb[j] = static_cast<float>(sb[j] / static_cast<double>(N));
      mg[j] = static_cast<float>(sg[j] / static_cast<double>(N));
    }
    kn.bnInput(d + j0, xh + j0, N, M, w, k.data(), mb.data(), mg.data());
  });
  if (act == GateLayer::Act::kPReLU) {
    const bool shared = p[kSlope].numel() == 1;
    g[kSlope] = torch::empty({shared ? 1 : M});
    float* gs = g[kSlope].data_ptr<float>();
    if (shared) {
      double sum = 0;
      for (int64_t j = 0; j < M; ++j) sum += ds[j];
      gs[0] = static_cast<float>(sum);
    } else {
      std::copy(ds.begin(), ds.end(), gs);
    }
  }
  if (flags & kHasBias) g[kBias] = da.sum(0);
  const auto& w = p[kWeight];
  const auto w2 = w.view({w.size(0), w.size(1)});
  g[kWeight] = torch::mm(da.t(), sv.x).view(w.sizes());
  return torch::mm(da, w2);
}

int layerFlags(const GateLayer& l) {
  return (l.conv->bias.defined() ? kHasBias : 0) | (l.bn ? kHasBn : 0) |
         (static_cast<int>(l.act) << 2);
}

void pushParams(const GateLayer& l, std::vector<torch::Tensor>& out) {
  auto none = [] { return torch::empty({0}); };
  out.push_back(l.conv->weight);
  out.push_back(l.conv->bias.defined() ? l.conv->bias : none());
  out.push_back(l.bn ? l.bn->weight : none());
  out.push_back(l.bn ? l.bn->bias : none());
  out.push_back(l.act == GateLayer::Act::kPReLU ? l.slope : none());
}

class GateNetFunction : public torch::autograd::Function<GateNetFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& s, at::TensorList params,
                               const GateNet* net) {
    const int64_t N = s.size(0), C = s.size(1);
    const GateLayer* layers[3] = {&net->reduce, &net->head_a, &net->head_b};
    int flags[3];
    Saved sv[3];
    for (int i = 0; i < 3; ++i) flags[i] = layerFlags(*layers[i]);
    const auto x = s.reshape({N, C}).contiguous();
    const auto z = layerForward(x, &params[0], flags[0], layers[0]->bn, sv[0]);
    const auto ha = layerForward(z, &params[kSlots], flags[1], layers[1]->bn, sv[1]);
    const auto hb = layerForward(z, &params[2 * kSlots], flags[2], layers[2]->bn, sv[2]);
    auto c = torch::empty({N, C});
    const float* a = ha.data_ptr<float>();
    const float* b = hb.data_ptr<float>();
    float* cp = c.data_ptr<float>();
    const float eps = static_cast<float>(net->eps);
#pragma omp simd
    for (int64_t i = 0; i < N * C; ++i) cp[i] = (a[i] - b[i]) + eps;  // + 0 changes no value
    c = c.sigmoid_().view({N, C, 1, 1});
    std::vector<torch::Tensor> keep(params.begin(), params.end());
    keep.push_back(c);
    ctx->save_for_backward(keep);
    for (int i = 0; i < 3; ++i) {
      const std::string k = std::to_string(i);
      ctx->saved_data["flags" + k] = flags[i];
      ctx->saved_data["x" + k] = sv[i].x;
      ctx->saved_data["z" + k] = sv[i].z;
      if (flags[i] & kHasBn) {
        ctx->saved_data["xhat" + k] = sv[i].xhat;
        ctx->saved_data["invstd" + k] = sv[i].invstd;
      }
    }
    return c;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const int64_t P = 3 * kSlots;
    const auto& c = saved[P];
    const int64_t N = c.size(0), C = c.size(1);
    int flags[3];
    Saved sv[3];
    for (int i = 0; i < 3; ++i) {
      const std::string k = std::to_string(i);
      flags[i] = static_cast<int>(ctx->saved_data["flags" + k].toInt());
      sv[i].x = ctx->saved_data["x" + k].toTensor();
      sv[i].z = ctx->saved_data["z" + k].toTensor();
      if (flags[i] & kHasBn) {
        sv[i].xhat = ctx->saved_data["xhat" + k].toTensor();
        sv[i].invstd = ctx->saved_data["invstd" + k].toTensor();
      }
    }
    // d logit = dc * c (1 - c); head_a gets it, head_b its negative.
    const auto dc = grads[0].reshape({N, C}).contiguous();
    auto da = torch::empty({N, C}), db = torch::empty({N, C});
    const float* g = dc.data_ptr<float>();
    const float* cp = c.data_ptr<float>();
    float* pa = da.data_ptr<float>();
    float* pb = db.data_ptr<float>();
    for (int64_t i = 0; i < N * C; ++i) {
      pa[i] = g[i] * (1.f - cp[i]) * cp[i];
      pb[i] = -pa[i];
    }
    std::vector<torch::Tensor> pg(P);
    auto dz = layerBackward(da, &saved[kSlots], flags[1], sv[1], &pg[kSlots]);
    dz.add_(layerBackward(db, &saved[2 * kSlots], flags[2], sv[2], &pg[2 * kSlots]));
    const auto dx = layerBackward(dz, &saved[0], flags[0], sv[0], &pg[0]);
    variable_list out;
    out.reserve(P + 2);
    out.push_back(dx.view({N, C, 1, 1}));
    for (auto& t : pg) out.push_back(t);
    out.emplace_back();  // net
    return out;
  }
};

}  // namespace gate_net
}  // namespace

GateLayer gateLayer(const std::shared_ptr<torch::nn::Module>& module) {
  GateLayer l;
  if (auto* seq = dynamic_cast<torch::nn::SequentialImpl*>(module.get())) {
    const size_t n = seq->size();
    if (n < 1 || n > 3) return {};
    l.conv = dynamic_cast<torch::nn::Conv2dImpl*>(seq->ptr(0).get());
    if (n >= 2 && !(l.bn = dynamic_cast<BatchNorm2dImpl*>(seq->ptr(1).get()))) return {};
    if (n == 3) {
      if (auto* p = dynamic_cast<PReLUImpl*>(seq->ptr(2).get())) {
        l.act = GateLayer::Act::kPReLU;
        l.slope = p->weight;
      } else if (dynamic_cast<torch::nn::ReLUImpl*>(seq->ptr(2).get())) {
        l.act = GateLayer::Act::kReLU;
      } else {
        return {};
      }
    }
    return l;
  }
  l.conv = dynamic_cast<torch::nn::Conv2dImpl*>(module.get());
  return l;
}

bool gateFusable(const GateNet& net, const at::Tensor& s) {
  if (!customKernels() || !s.defined() || s.scalar_type() != torch::kFloat32 ||
      !s.device().is_cpu() || s.dim() != 4 || s.size(0) < 2 || s.size(2) != 1 || s.size(3) != 1)
    return false;
  const int64_t C = s.size(1);
  const int64_t d = gate_net::layerOut(net.reduce, C);
  return d > 0 && gate_net::layerOut(net.head_a, d) == C && gate_net::layerOut(net.head_b, d) == C;
}

at::Tensor fusedGate(const GateNet& net, const at::Tensor& s) {
  TORCH_CHECK(gateFusable(net, s), "fusedGate: unsupported gate network or input");
  std::vector<torch::Tensor> params;
  params.reserve(3 * gate_net::kSlots);
  for (const GateLayer* l : {&net.reduce, &net.head_a, &net.head_b})
    gate_net::pushParams(*l, params);
  return gate_net::GateNetFunction::apply(s, at::TensorList(params), &net);
}

}  // namespace msconv::nn
