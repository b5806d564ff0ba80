#include "msconv/nn/fusion.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "msconv/error.h"
#include "msconv/nn/kernel_switch.h"
#include "nn/cpu_isa.h"

#ifdef MSCONV_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>

#include "nn/fusion_cuda.h"
#endif

namespace msconv::nn {
namespace {

// ---- Kernels -----------------------------------------------------------------------------------
// Written once as plain loops (always inlined), compiled three times: inside AVX-512 and AVX2
// wrappers (GCC vectorises the inlined loops for the wrapper's instruction set) and plain.
// sg = -1: D = U1 - U2; sg = +1: D = U1 + U2.

#define MSCONV_INLINE inline __attribute__((always_inline))

// NCHW: planes [p0, p1) of hw contiguous floats each.
MSCONV_INLINE void poolPlanes(const float* a, const float* b, float* s, int64_t p0, int64_t p1,
                              int64_t hw) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* x = a + p * hw;
    const float* y = b + p * hw;
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < hw; ++i) acc += x[i] * y[i];
    s[p] = acc / static_cast<float>(hw);
  }
}

MSCONV_INLINE void mixPlanes(const float* a, const float* b, const float* c, float* v, float sg,
                             int64_t p0, int64_t p1, int64_t hw) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* x = a + p * hw;
    const float* y = b + p * hw;
    float* o = v + p * hw;
    const float cp = c[p];
#pragma omp simd
    for (int64_t i = 0; i < hw; ++i) o[i] = y[i] + cp * (x[i] + sg * y[i]);
  }
}

MSCONV_INLINE void gateGradPlanes(const float* dv, const float* a, const float* b, float* dc,
                                  float sg, int64_t p0, int64_t p1, int64_t hw) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* g = dv + p * hw;
    const float* x = a + p * hw;
    const float* y = b + p * hw;
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < hw; ++i) acc += g[i] * (x[i] + sg * y[i]);
    dc[p] = acc;
  }
}

MSCONV_INLINE void inputGradPlanes(const float* dv, const float* a, const float* b, const float* c,
                                   const float* ds, float* da, float* db, float sg, int64_t p0,
                                   int64_t p1, int64_t hw) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* g = dv + p * hw;
    const float* x = a + p * hw;
    const float* y = b + p * hw;
    float* gx = da + p * hw;
    float* gy = db + p * hw;
    const float cp = c[p], k = 1.f + sg * cp, q = ds[p] / static_cast<float>(hw);
#pragma omp simd
    for (int64_t i = 0; i < hw; ++i) {
      gx[i] = cp * g[i] + q * y[i];
      gy[i] = k * g[i] + q * x[i];
    }
  }
}

// Channels-last: image n is hw rows of C contiguous channels; per-image sums over rows [r0, r1).
MSCONV_INLINE void poolRows(const float* a, const float* b, float* acc, int64_t r0, int64_t r1,
                            int64_t C) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a + r * C;
    const float* y = b + r * C;
#pragma omp simd
    for (int64_t ch = 0; ch < C; ++ch) acc[ch] += x[ch] * y[ch];
  }
}

MSCONV_INLINE void mixRows(const float* a, const float* b, const float* c, float* v, float sg,
                           int64_t r0, int64_t r1, int64_t C) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a + r * C;
    const float* y = b + r * C;
    float* o = v + r * C;
#pragma omp simd
    for (int64_t ch = 0; ch < C; ++ch) o[ch] = y[ch] + c[ch] * (x[ch] + sg * y[ch]);
  }
}

MSCONV_INLINE void gateGradRows(const float* dv, const float* a, const float* b, float* acc,
                                float sg, int64_t r0, int64_t r1, int64_t C) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* g = dv + r * C;
    const float* x = a + r * C;
    const float* y = b + r * C;
#pragma omp simd
    for (int64_t ch = 0; ch < C; ++ch) acc[ch] += g[ch] * (x[ch] + sg * y[ch]);
  }
}

MSCONV_INLINE void inputGradRows(const float* dv, const float* a, const float* b, const float* c,
                                 const float* q, float* da, float* db, float sg, int64_t r0,
                                 int64_t r1, int64_t C) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* g = dv + r * C;
    const float* x = a + r * C;
    const float* y = b + r * C;
    float* gx = da + r * C;
    float* gy = db + r * C;
#pragma omp simd
    for (int64_t ch = 0; ch < C; ++ch) {
      gx[ch] = c[ch] * g[ch] + q[ch] * y[ch];
      gy[ch] = (1.f + sg * c[ch]) * g[ch] + q[ch] * x[ch];
    }
  }
}

struct Kernels {
  void (*poolPlanes)(const float*, const float*, float*, int64_t, int64_t, int64_t);
  void (*mixPlanes)(const float*, const float*, const float*, float*, float, int64_t, int64_t,
                    int64_t);
  void (*gateGradPlanes)(const float*, const float*, const float*, float*, float, int64_t, int64_t,
                         int64_t);
  void (*inputGradPlanes)(const float*, const float*, const float*, const float*, const float*,
                          float*, float*, float, int64_t, int64_t, int64_t);
  void (*poolRows)(const float*, const float*, float*, int64_t, int64_t, int64_t);
  void (*mixRows)(const float*, const float*, const float*, float*, float, int64_t, int64_t,
                  int64_t);
  void (*gateGradRows)(const float*, const float*, const float*, float*, float, int64_t, int64_t,
                       int64_t);
  void (*inputGradRows)(const float*, const float*, const float*, const float*, const float*,
                        float*, float*, float, int64_t, int64_t, int64_t);
  const char* isa;
};

#define MSCONV_DEFINE_KERNELS(NS, ATTR, NAME)                                                      \
  namespace NS {                                                                                   \
  ATTR void poolP(const float* a, const float* b, float* s, int64_t p0, int64_t p1, int64_t hw) {  \
    poolPlanes(a, b, s, p0, p1, hw);                                                               \
  }                                                                                                \
  ATTR void mixP(const float* a, const float* b, const float* c, float* v, float sg, int64_t p0,   \
                 int64_t p1, int64_t hw) {                                                         \
    mixPlanes(a, b, c, v, sg, p0, p1, hw);                                                         \
  }                                                                                                \
  ATTR void gateP(const float* dv, const float* a, const float* b, float* dc, float sg,            \
                  int64_t p0, int64_t p1, int64_t hw) {                                            \
    gateGradPlanes(dv, a, b, dc, sg, p0, p1, hw);                                                  \
  }                                                                                                \
  ATTR void inputP(const float* dv, const float* a, const float* b, const float* c,                \
                   const float* ds, float* da, float* db, float sg, int64_t p0, int64_t p1,        \
                   int64_t hw) {                                                                   \
    inputGradPlanes(dv, a, b, c, ds, da, db, sg, p0, p1, hw);                                      \
  }                                                                                                \
  ATTR void poolR(const float* a, const float* b, float* acc, int64_t r0, int64_t r1, int64_t C) { \
    poolRows(a, b, acc, r0, r1, C);                                                                \
  }                                                                                                \
  ATTR void mixR(const float* a, const float* b, const float* c, float* v, float sg, int64_t r0,   \
                 int64_t r1, int64_t C) {                                                          \
    mixRows(a, b, c, v, sg, r0, r1, C);                                                            \
  }                                                                                                \
  ATTR void gateR(const float* dv, const float* a, const float* b, float* acc, float sg,           \
                  int64_t r0, int64_t r1, int64_t C) {                                             \
    gateGradRows(dv, a, b, acc, sg, r0, r1, C);                                                    \
  }                                                                                                \
  ATTR void inputR(const float* dv, const float* a, const float* b, const float* c,                \
                   const float* q, float* da, float* db, float sg, int64_t r0, int64_t r1,         \
                   int64_t C) {                                                                    \
    inputGradRows(dv, a, b, c, q, da, db, sg, r0, r1, C);                                          \
  }                                                                                                \
  const Kernels table{poolP, mixP, gateP, inputP, poolR, mixR, gateR, inputR, NAME};               \
  }

MSCONV_DEFINE_KERNELS(avx512, __attribute__((target("avx512f,avx512vl,avx2,fma"))), "avx512")
MSCONV_DEFINE_KERNELS(avx2, __attribute__((target("avx2,fma"))), "avx2")
MSCONV_DEFINE_KERNELS(generic, , "generic")

const Kernels& kernels() {
  static const Kernels* k = widestIsa(&avx512::table, &avx2::table, &generic::table);
  return *k;
}

// ---- Shapes and layouts ------------------------------------------------------------------------

enum class Layout { kNchw, kNhwc };

#ifdef MSCONV_WITH_CUDA
constexpr bool kCuda = true;
#else
constexpr bool kCuda = false;
#endif

Layout layoutOf(const at::Tensor& t, const char* what) {
  if (t.scalar_type() != at::kFloat || !(t.device().is_cpu() || (kCuda && t.is_cuda())) ||
      t.dim() != 4)
    throw Error(std::string("fused MSConv stage: ") + what + " must be a 4-d float " +
                (kCuda ? "CPU or CUDA" : "CPU") + " tensor, got " + t.toString() + " " +
                std::to_string(t.dim()) + "-d");
  if (t.is_contiguous()) return Layout::kNchw;
  if (t.is_contiguous(at::MemoryFormat::ChannelsLast)) return Layout::kNhwc;
  throw Error(std::string("fused MSConv stage: ") + what + " is neither NCHW nor channels-last");
}

Layout checkPair(const at::Tensor& a, const at::Tensor& b) {
  const Layout l = layoutOf(a, "U1");
  if (layoutOf(b, "U2") != l || a.sizes() != b.sizes())
    throw Error("fused MSConv stage: U1 and U2 differ in shape or layout");
  return l;
}

at::Tensor like(const at::Tensor& t, Layout l) {
  return at::empty(t.sizes(),
                   t.options().memory_format(l == Layout::kNhwc ? at::MemoryFormat::ChannelsLast
                                                                : at::MemoryFormat::Contiguous));
}

// Threads only for large maps: these passes are memory-bound, and on small maps waking the
// intra-op pool costs more than it saves (measured: MSNet-50's stage-2..4 maps run faster on one
// thread than on two).
constexpr int64_t kParallelFloats = int64_t{1} << 18;

template <typename Fn>
void parallelFor(int64_t begin, int64_t end, int64_t floats_per_item, const Fn& fn) {
  if ((end - begin) * floats_per_item < kParallelFloats) {
    fn(begin, end);
    return;
  }
  at::parallel_for(begin, end, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, floats_per_item)),
                   fn);
}

// Per-image channel sums for channels-last: rows of each image split over threads, per-thread
// partial sums added afterwards (N small and images large is the common training case).
template <typename RowFn>
at::Tensor channelSums(int64_t N, int64_t C, int64_t HW, RowFn row_fn) {
  auto out = at::zeros({N, C, 1, 1}, at::kFloat);
  float* o = out.data_ptr<float>();
  const int64_t rows = N * HW;
  const int threads = rows * C < kParallelFloats ? 1 : at::get_num_threads();
  const int64_t chunk = std::max<int64_t>(1, (rows + threads - 1) / threads);
  const int64_t chunks = (rows + chunk - 1) / chunk;
  std::vector<float> partial(static_cast<size_t>(chunks) * N * C, 0.f);
  parallelFor(0, chunks, chunk * C, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t r0 = k * chunk, r1 = std::min(rows, r0 + chunk);
      for (int64_t r = r0; r < r1;) {  // split at image boundaries
        const int64_t n = r / HW, end = std::min(r1, (n + 1) * HW);
        row_fn(partial.data() + (k * N + n) * C, r, end);
        r = end;
      }
    }
  });
  for (int64_t k = 0; k < chunks; ++k)
    for (int64_t i = 0; i < N * C; ++i) o[i] += partial[k * N * C + i];
  return out;
}

#ifdef MSCONV_WITH_CUDA
void cudaCheck(int status, const char* what) {
  if (status != 0)
    throw Error(std::string("fused MSConv stage, CUDA ") + what + ": " +
                cudaGetErrorString(static_cast<cudaError_t>(status)));
}
void* stream() {
  return at::cuda::getCurrentCUDAStream().stream();
}
#endif

}  // namespace

at::Tensor fusionPool(const at::Tensor& u1, const at::Tensor& u2) {
  const Layout l = checkPair(u1, u2);
  const int64_t N = u1.size(0), C = u1.size(1), HW = u1.size(2) * u1.size(3);
  const float* a = u1.data_ptr<float>();
  const float* b = u2.data_ptr<float>();
#ifdef MSCONV_WITH_CUDA
  if (u1.is_cuda()) {
    auto s = at::empty({N, C, 1, 1}, u1.options().memory_format(at::MemoryFormat::Contiguous));
    cudaCheck(cuda::fusionPool(a, b, s.data_ptr<float>(), N, C, HW, l == Layout::kNhwc, stream()),
              "pool");
    return s;
  }
#endif
  const Kernels& k = kernels();
  if (l == Layout::kNchw) {
    auto s = at::empty({N, C, 1, 1}, at::kFloat);
    float* o = s.data_ptr<float>();
    parallelFor(0, N * C, 2 * HW,
                [&](int64_t p0, int64_t p1) { k.poolPlanes(a, b, o, p0, p1, HW); });
    return s;
  }
  auto s = channelSums(
      N, C, HW, [&](float* acc, int64_t r0, int64_t r1) { k.poolRows(a, b, acc, r0, r1, C); });
  return s.div_(static_cast<float>(HW));
}

at::Tensor fusionMix(const at::Tensor& u1, const at::Tensor& u2, const at::Tensor& c,
                     bool diff_add) {
  const Layout l = checkPair(u1, u2);
  const int64_t N = u1.size(0), C = u1.size(1), HW = u1.size(2) * u1.size(3);
  const auto cc = c.contiguous();
  const float* a = u1.data_ptr<float>();
  const float* b = u2.data_ptr<float>();
  const float* g = cc.data_ptr<float>();
  auto v = like(u1, l);
  float* o = v.data_ptr<float>();
  const float sg = diff_add ? 1.f : -1.f;
#ifdef MSCONV_WITH_CUDA
  if (u1.is_cuda()) {
    cudaCheck(cuda::fusionMix(a, b, g, o, sg, N, C, HW, l == Layout::kNhwc, stream()), "mix");
    return v;
  }
#endif
  const Kernels& k = kernels();
  if (l == Layout::kNchw) {
    parallelFor(0, N * C, 2 * HW,
                [&](int64_t p0, int64_t p1) { k.mixPlanes(a, b, g, o, sg, p0, p1, HW); });
  } else {
    parallelFor(0, N * HW, 3 * C, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1;) {
        const int64_t n = r / HW, end = std::min(r1, (n + 1) * HW);
        k.mixRows(a, b, g + n * C, o, sg, r, end, C);
        r = end;
      }
    });
  }
  return v;
}

at::Tensor fusionGateGrad(const at::Tensor& dv, const at::Tensor& u1, const at::Tensor& u2,
                          bool diff_add) {
  const Layout l = checkPair(u1, u2);
  const auto g =
      l == Layout::kNhwc ? dv.contiguous(at::MemoryFormat::ChannelsLast) : dv.contiguous();
  const int64_t N = u1.size(0), C = u1.size(1), HW = u1.size(2) * u1.size(3);
  const float* d = g.data_ptr<float>();
  const float* a = u1.data_ptr<float>();
  const float* b = u2.data_ptr<float>();
  const float sg = diff_add ? 1.f : -1.f;
#ifdef MSCONV_WITH_CUDA
  if (u1.is_cuda()) {
    auto dc = at::empty({N, C, 1, 1}, u1.options().memory_format(at::MemoryFormat::Contiguous));
    cudaCheck(cuda::fusionGateGrad(d, a, b, dc.data_ptr<float>(), sg, N, C, HW, l == Layout::kNhwc,
                                   stream()),
              "gate gradient");
    return dc;
  }
#endif
  const Kernels& k = kernels();
  if (l == Layout::kNchw) {
    auto dc = at::empty({N, C, 1, 1}, at::kFloat);
    float* o = dc.data_ptr<float>();
    parallelFor(0, N * C, 2 * HW,
                [&](int64_t p0, int64_t p1) { k.gateGradPlanes(d, a, b, o, sg, p0, p1, HW); });
    return dc;
  }
  return channelSums(N, C, HW, [&](float* acc, int64_t r0, int64_t r1) {
    k.gateGradRows(d, a, b, acc, sg, r0, r1, C);
  });
}

void fusionInputGrad(const at::Tensor& dv, const at::Tensor& u1, const at::Tensor& u2,
                     const at::Tensor& c, const at::Tensor& ds, bool diff_add, at::Tensor& du1,
                     at::Tensor& du2) {
  const Layout l = checkPair(u1, u2);
  const auto g =
      l == Layout::kNhwc ? dv.contiguous(at::MemoryFormat::ChannelsLast) : dv.contiguous();
  const int64_t N = u1.size(0), C = u1.size(1), HW = u1.size(2) * u1.size(3);
  const auto cc = c.contiguous(), dd = ds.contiguous();
  du1 = like(u1, l);
  du2 = like(u1, l);
  const float* d = g.data_ptr<float>();
  const float* a = u1.data_ptr<float>();
  const float* b = u2.data_ptr<float>();
  const float* gc = cc.data_ptr<float>();
  const float* gs = dd.data_ptr<float>();
  float* o1 = du1.data_ptr<float>();
  float* o2 = du2.data_ptr<float>();
  const float sg = diff_add ? 1.f : -1.f;
#ifdef MSCONV_WITH_CUDA
  if (u1.is_cuda()) {
    cudaCheck(
        cuda::fusionInputGrad(d, a, b, gc, gs, o1, o2, sg, N, C, HW, l == Layout::kNhwc, stream()),
        "input gradients");
    return;
  }
#endif
  const Kernels& k = kernels();
  if (l == Layout::kNchw) {
    parallelFor(0, N * C, 5 * HW, [&](int64_t p0, int64_t p1) {
      k.inputGradPlanes(d, a, b, gc, gs, o1, o2, sg, p0, p1, HW);
    });
    return;
  }
  std::vector<float> q(static_cast<size_t>(N * C));
  for (int64_t i = 0; i < N * C; ++i) q[i] = gs[i] / static_cast<float>(HW);
  parallelFor(0, N * HW, 5 * C, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1;) {
      const int64_t n = r / HW, end = std::min(r1, (n + 1) * HW);
      k.inputGradRows(d, a, b, gc + n * C, q.data() + n * C, o1, o2, sg, r, end, C);
      r = end;
    }
  });
}

// ---- The autograd node -------------------------------------------------------------------------

namespace {

struct FusionFn : torch::autograd::Function<FusionFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& u1,
                            const at::Tensor& u2, const GateFn* gate, bool diff_add,
                            FusionResult* out) {
    const auto s = fusionPool(u1, u2);
    // The gate network as a graph of its own on a leaf copy of s: its backward is run from ours.
    at::Tensor s_leaf, c;
    {
      torch::AutoGradMode grad(true);
      s_leaf = s.detach().requires_grad_(true);
      c = (*gate)(s_leaf);
    }
    const auto v = fusionMix(u1, u2, c.detach(), diff_add);
    ctx->save_for_backward({u1, u2});
    ctx->saved_data["s"] = s_leaf;
    ctx->saved_data["c"] = c;
    ctx->saved_data["diff_add"] = diff_add;
    out->s = s;
    out->c = c.detach();
    return v;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& u1 = saved[0];
    const auto& u2 = saved[1];
    auto s_leaf = ctx->saved_data["s"].toTensor();
    auto c = ctx->saved_data["c"].toTensor();
    const bool diff_add = ctx->saved_data["diff_add"].toBool();
    const auto& dv = grads[0];
    const auto dc = fusionGateGrad(dv, u1, u2, diff_add);
    // Through the gate network: its parameters accumulate gradients; s's gradient comes back.
    {
      torch::AutoGradMode grad(true);
      torch::autograd::backward({c}, {dc});
    }
    const auto ds = s_leaf.grad().defined() ? s_leaf.grad() : at::zeros_like(dc);
    at::Tensor du1, du2;
    fusionInputGrad(dv, u1, u2, c.detach(), ds, diff_add, du1, du2);
    return {du1, du2, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

EnvSwitch g_fused{"MSCONV_FUSED"};

}  // namespace

bool fusedFusionEnabled() {
  return g_fused.on();
}

void setFusedFusion(bool on) {
  g_fused.set(on);
}

FusionResult composedMsFusion(const at::Tensor& u1, const at::Tensor& u2, const GateFn& gate,
                              bool diff_add) {
  FusionResult r;
  const auto s = (u1 * u2).mean({2, 3}, /*keepdim=*/true);
  const auto c = gate(s);
  r.v = u2 + c * (diff_add ? u1 + u2 : u1 - u2);
  r.s = s.detach();
  r.c = c.detach();
  return r;
}

FusionResult fusedMsFusion(const at::Tensor& u1, const at::Tensor& u2, const GateFn& gate,
                           bool diff_add) {
  auto layout = [](const at::Tensor& t) {
    return t.is_contiguous() ? 1 : t.is_contiguous(at::MemoryFormat::ChannelsLast) ? 2 : 0;
  };
  const bool usable = (u1.device().is_cpu() || (kCuda && u1.is_cuda())) &&
                      u2.device() == u1.device() && u1.scalar_type() == at::kFloat &&
                      u2.scalar_type() == at::kFloat && u1.dim() == 4 && u2.sizes() == u1.sizes() &&
                      layout(u1) != 0 && layout(u1) == layout(u2);
  if (!usable || !customKernels()) return composedMsFusion(u1, u2, gate, diff_add);
  FusionResult r;
  const bool needs_grad = at::GradMode::is_enabled() && (u1.requires_grad() || u2.requires_grad());
  if (!needs_grad) {
    r.s = fusionPool(u1, u2);
    r.c = gate(r.s).detach();
    r.v = fusionMix(u1, u2, r.c, diff_add);
    return r;
  }
  r.v = FusionFn::apply(u1, u2, &gate, diff_add, &r);  // also fills r.s and r.c
  return r;
}

}  // namespace msconv::nn
