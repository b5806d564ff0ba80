// Grouped 3x3 convolutions, hand-written: see group_conv.h.
//
// Layout. Every pass works on channels-last data: the input (or, for grad-input, the output
// gradient) is first copied into a zero-bordered channels-last buffer (N, H + 2d, W + 2d, C), so
// that the kernels need no bounds checks. A vector holds W consecutive output channels (W = 16 for
// AVX-512, 8 for AVX2):
// - K < W channels per group (4, 8): a vector spans W / K groups; the input vector at the same
//   channels is loaded once per tap and input channel k of each group is broadcast within its
//   group's lanes by a constant shuffle;
// - K >= W (a multiple of W): the vector lies in one group; input channel k is a scalar broadcast.
// The forward kernel computes P output pixels of a row (up to 12, in registers; two rows of up
// to 7 for narrow maps) for one or two vectors of output channels; weights are packed as
// [C / W][9 taps][K][W]. Grad-input is the same kernel on the (padded) output gradient with the
// weights transposed within each group, the taps mirrored; for stride 2 it runs once per parity
// class of input pixels with the taps that reach them. Grad-weight sums over all N * Ho * Wo
// output pixels per (vector of channels, input-channel chunk, kernel row); these items own
// disjoint weights, so no thread ever combines another's partial sums and the result does not
// depend on the thread count. Which of these and oneDNN runs is measured per shape (see
// groupConvChosen).
#include "msconv/nn/group_conv.h"

#include "nn/cpu_isa.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "msconv/error.h"
#include "msconv/nn/kernel_switch.h"

namespace msconv::nn {
namespace {

#define MSCONV_GC_INLINE inline __attribute__((always_inline))
// The vector helpers below take and return 256/512-bit vectors in functions compiled without
// AVX; they are always inlined into the per-ISA copies (internal linkage), so no call with the
// changed ABI ever exists.
#pragma GCC diagnostic ignored "-Wpsabi"

// ---- Vectors (GCC vector extensions; compiled for the ISA of the function they inline into) ----

struct V16 {
  static constexpr int kW = 16;
  typedef float v __attribute__((vector_size(64)));
  typedef float vu __attribute__((vector_size(64), aligned(4), may_alias));
  typedef int vi __attribute__((vector_size(64)));
};
struct V8 {
  static constexpr int kW = 8;
  typedef float v __attribute__((vector_size(32)));
  typedef float vu __attribute__((vector_size(32), aligned(4), may_alias));
  typedef int vi __attribute__((vector_size(32)));
};

template <class T>
MSCONV_GC_INLINE typename T::v load(const float* p) {
  return *reinterpret_cast<const typename T::vu*>(p);
}
template <class T>
MSCONV_GC_INLINE void store(float* p, typename T::v x) {
  *reinterpret_cast<typename T::vu*>(p) = x;
}
// Lane j gets x[(j / K) * K + k]: input channel k of the group lane j belongs to.
template <class T, int K, int k, int... j>
MSCONV_GC_INLINE typename T::v groupLane(typename T::v x, std::integer_sequence<int, j...>) {
  return __builtin_shuffle(x, typename T::vi{((j / K) * K + k)...});
}
template <class T, int K, int k>
MSCONV_GC_INLINE typename T::v groupLane(typename T::v x) {
  return groupLane<T, K, k>(x, std::make_integer_sequence<int, T::kW>{});
}

// ---- Convolution kernels: P output pixels of one row -------------------------------------------
// in: the padded input at output pixel 0's origin, at the first input channel this block reads;
// pstep: floats between the inputs of consecutive output pixels; taps: the taps that contribute
// (all 9 for the forward pass, a parity class's subset for a strided grad-input), each an input
// offset and an offset into the packed weights [9][K][W] of the block's first vector (the next
// vector's wr floats further); out: output pixel 0 at the block's first channel, ostep floats
// between pixels.

struct Taps {
  int n;
  ptrdiff_t in[9];
  ptrdiff_t w[9];
};

template <class T, int P, int K, int k>
MSCONV_GC_INLINE void shuffleTaps(const typename T::v* x, const float* wt, typename T::v* acc) {
  if constexpr (k < K) {
    const typename T::v wk = load<T>(wt + k * T::kW);
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc[p] += groupLane<T, K, k>(x[p]) * wk;
    shuffleTaps<T, P, K, k + 1>(x, wt, acc);
  }
}

template <class T, int P, int K>
MSCONV_GC_INLINE void convShuffle(const float* in, ptrdiff_t pstep, const Taps& taps,
                                  const float* w, float* out, ptrdiff_t ostep) {
  using v = typename T::v;
  v acc[P];
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) acc[p] = v{};
  for (int t = 0; t < taps.n; ++t) {
    const float* it = in + taps.in[t];
    v x[P];
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) x[p] = load<T>(it + p * pstep);
    shuffleTaps<T, P, K, 0>(x, w + taps.w[t], acc);
  }
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) store<T>(out + p * ostep, acc[p]);
}

// Q = 2 computes the same P pixels in a second row too, in_row2 / out_row2 floats further (for
// narrow maps, whose rows alone leave too few accumulators to hide the FMA latency).
template <class T, int P, int R, int Q>
MSCONV_GC_INLINE void convBroadcast(const float* in, ptrdiff_t pstep, const Taps& taps,
                                    const float* w, ptrdiff_t wr, int K, float* out,
                                    ptrdiff_t ostep, ptrdiff_t in_row2, ptrdiff_t out_row2) {
  using v = typename T::v;
  v acc[Q * P][R];
#pragma GCC unroll 16
  for (int p = 0; p < Q * P; ++p)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[p][r] = v{};
  for (int t = 0; t < taps.n; ++t) {
    const float* it = in + taps.in[t];
    const float* wt = w + taps.w[t];
    for (int k = 0; k < K; ++k) {
      v wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) wv[r] = load<T>(wt + r * wr + k * T::kW);
#pragma GCC unroll 2
      for (int q = 0; q < Q; ++q)
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) {
          const float s = it[q * in_row2 + p * pstep + k];
#pragma GCC unroll 4
          for (int r = 0; r < R; ++r) acc[q * P + p][r] += s * wv[r];
        }
    }
  }
#pragma GCC unroll 2
  for (int q = 0; q < Q; ++q)
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
        store<T>(out + q * out_row2 + p * ostep + r * T::kW, acc[q * P + p][r]);
}

// ---- Grad-weight kernels: one kernel row's 3 taps for a chunk of input channels, summed over ----
// every output pixel.

struct GwArgs {
  const float* dy;  // output gradient (channels-last) at the block's first channel
  ptrdiff_t dy_x, dy_y, dy_n;
  const float* in;  // padded input at kernel row ky, tap 0, the block's first input channel
  ptrdiff_t in_x, in_y, in_n;
  ptrdiff_t toff[3];
  int row_begin, row_end;  // output rows n * ho + oy to sum over
  int ho, wo;
  bool accumulate;  // add to the sums already in out (else start from zero)
};

// K < W: lanes are input channels (channel c's lane holds dW[group * K + m][c % K]), the output
// gradient's channel m of each group is broadcast within the group's lanes. acc: [3][K][W].
template <class T, int K, int m>
MSCONV_GC_INLINE void gradTaps(typename T::v d, const float* xp, const ptrdiff_t* toff,
                               typename T::v (*acc)[K]) {
  if constexpr (m < K) {
    const typename T::v dm = groupLane<T, K, m>(d);
#pragma GCC unroll 3
    for (int t = 0; t < 3; ++t) acc[t][m] += dm * load<T>(xp + toff[t]);
    gradTaps<T, K, m + 1>(d, xp, toff, acc);
  }
}

template <class T, int K>
MSCONV_GC_INLINE void gradWeightShuffle(const GwArgs& a, float* out) {
  using v = typename T::v;
  v acc[3][K];
#pragma GCC unroll 3
  for (int t = 0; t < 3; ++t)
#pragma GCC unroll 16
    for (int m = 0; m < K; ++m) acc[t][m] = a.accumulate ? load<T>(out + (t * K + m) * T::kW) : v{};
  for (int r = a.row_begin; r < a.row_end; ++r) {
    const int n = r / a.ho, oy = r % a.ho;
    const float* dyr = a.dy + n * a.dy_n + oy * a.dy_y;
    const float* xr = a.in + n * a.in_n + oy * a.in_y;
    for (int ox = 0; ox < a.wo; ++ox)
      gradTaps<T, K, 0>(load<T>(dyr + ox * a.dy_x), xr + ox * a.in_x, a.toff, acc);
  }
#pragma GCC unroll 3
  for (int t = 0; t < 3; ++t)
#pragma GCC unroll 16
    for (int m = 0; m < K; ++m) store<T>(out + (t * K + m) * T::kW, acc[t][m]);
}

// K >= W: lanes are output channels, KB input channels of the group at a time, each a scalar
// broadcast. acc: [3][KB][W].
template <class T, int KB>
MSCONV_GC_INLINE void gradWeightBroadcast(const GwArgs& a, float* out) {
  using v = typename T::v;
  v acc[3][KB];
#pragma GCC unroll 3
  for (int t = 0; t < 3; ++t)
#pragma GCC unroll 16
    for (int k = 0; k < KB; ++k)
      acc[t][k] = a.accumulate ? load<T>(out + (t * KB + k) * T::kW) : v{};
  for (int r = a.row_begin; r < a.row_end; ++r) {
    const int n = r / a.ho, oy = r % a.ho;
    const float* dyr = a.dy + n * a.dy_n + oy * a.dy_y;
    const float* xr = a.in + n * a.in_n + oy * a.in_y;
    for (int ox = 0; ox < a.wo; ++ox) {
      const v d = load<T>(dyr + ox * a.dy_x);
      const float* xp = xr + ox * a.in_x;
#pragma GCC unroll 3
      for (int t = 0; t < 3; ++t)
#pragma GCC unroll 16
        for (int k = 0; k < KB; ++k) acc[t][k] += xp[a.toff[t] + k] * d;
    }
  }
#pragma GCC unroll 3
  for (int t = 0; t < 3; ++t)
#pragma GCC unroll 16
    for (int k = 0; k < KB; ++k) store<T>(out + (t * KB + k) * T::kW, acc[t][k]);
}

// ---- Per-ISA copies ----------------------------------------------------------------------------

using ConvFn = void (*)(const float*, ptrdiff_t, const Taps&, const float*, ptrdiff_t, int, float*,
                        ptrdiff_t);
using ConvRowsFn = void (*)(const float*, ptrdiff_t, const Taps&, const float*, ptrdiff_t, int,
                            float*, ptrdiff_t, ptrdiff_t, ptrdiff_t);
using GradWeightFn = void (*)(const GwArgs&, float*);
constexpr int kMaxP = 12;

struct Kernels {
  const char* name;
  int width;                               // floats per vector
  int max_pixels;                          // output pixels per forward kernel call
  int gw_chunk;                            // input channels per grad-weight item when K >= width
  ConvFn shuffle4[kMaxP + 1];              // [P], K = 4 < width
  ConvFn shuffle8[kMaxP + 1];              // [P], K = 8 < width (AVX-512 only)
  ConvFn broadcast1[kMaxP + 1];            // [P], K >= width, one vector of output channels
  ConvFn broadcast2[kMaxP + 1];            // [P], K >= 2 * width, two vectors
  int max_pixels_2rows;                    // pixels per row of the two-row kernels
  ConvRowsFn broadcast1_2rows[kMaxP + 1];  // [P], as broadcast1 for two rows at once
  ConvRowsFn broadcast2_2rows[kMaxP + 1];  // [P], as broadcast2 for two rows at once
  GradWeightFn gw_shuffle4, gw_shuffle8, gw_broadcast;
};

#define MSCONV_GC_DEFINE_KERNELS(NS, ATTR, VT, PMAX, P2MAX, KB, NAME, HAS8)                        \
  namespace NS {                                                                                   \
  template <int P, int K>                                                                          \
  ATTR void shuffle(const float* in, ptrdiff_t ps, const Taps& to, const float* w, ptrdiff_t, int, \
                    float* out, ptrdiff_t os) {                                                    \
    convShuffle<VT, P, K>(in, ps, to, w, out, os);                                                 \
  }                                                                                                \
  template <int P, int R>                                                                          \
  ATTR void broadcast(const float* in, ptrdiff_t ps, const Taps& to, const float* w, ptrdiff_t wr, \
                      int k, float* out, ptrdiff_t os) {                                           \
    convBroadcast<VT, P, R, 1>(in, ps, to, w, wr, k, out, os, 0, 0);                               \
  }                                                                                                \
  template <int P, int R>                                                                          \
  ATTR void broadcastRows(const float* in, ptrdiff_t ps, const Taps& to, const float* w,           \
                          ptrdiff_t wr, int k, float* out, ptrdiff_t os, ptrdiff_t ir,             \
                          ptrdiff_t orow) {                                                        \
    convBroadcast<VT, P, R, 2>(in, ps, to, w, wr, k, out, os, ir, orow);                           \
  }                                                                                                \
  template <int K>                                                                                 \
  ATTR void gwShuffle(const GwArgs& a, float* out) {                                               \
    gradWeightShuffle<VT, K>(a, out);                                                              \
  }                                                                                                \
  ATTR void gwBroadcast(const GwArgs& a, float* out) {                                             \
    gradWeightBroadcast<VT, KB>(a, out);                                                           \
  }                                                                                                \
  template <int... P>                                                                              \
  constexpr Kernels make(std::integer_sequence<int, P...>) {                                       \
    return Kernels{                                                                                \
        NAME,                                                                                      \
        VT::kW,                                                                                    \
        PMAX,                                                                                      \
        KB,                                                                                        \
        {nullptr, &shuffle<P + 1, 4>...},                                                          \
        {nullptr, (HAS8 ? &shuffle<P + 1, (HAS8 ? 8 : 4)> : nullptr)...},                          \
        {nullptr, &broadcast<P + 1, 1>...},                                                        \
        {nullptr, &broadcast<P + 1, 2>...},                                                        \
        P2MAX,                                                                                     \
        {nullptr, (P < P2MAX ? &broadcastRows<(P < P2MAX ? P + 1 : 1), 1> : nullptr)...},          \
        {nullptr, (P < P2MAX ? &broadcastRows<(P < P2MAX ? P + 1 : 1), 2> : nullptr)...},          \
        &gwShuffle<4>,                                                                             \
        HAS8 ? &gwShuffle<(HAS8 ? 8 : 4)> : nullptr,                                               \
        &gwBroadcast};                                                                             \
  }                                                                                                \
  const Kernels table = make(std::make_integer_sequence<int, PMAX>{});                             \
  }

// AVX-512: 32 registers, up to 12 pixels x 2 vectors of accumulators (two rows of 7); AVX2: 16,
// 6 x 2 (two rows of 3).
MSCONV_GC_DEFINE_KERNELS(avx512,
                         __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))),
                         V16, 12, 7, 8, "avx512", true)
MSCONV_GC_DEFINE_KERNELS(avx2, __attribute__((target("avx2,fma"))), V8, 6, 3, 4, "avx2", false)

const Kernels* bestKernels() {
  return widestIsa<Kernels>(&avx512::table, &avx2::table, nullptr);
}

std::atomic<const Kernels*>& activeKernels() {
  static std::atomic<const Kernels*> k{bestKernels()};
  return k;
}

// ---- Shapes ------------------------------------------------------------------------------------

// Whether K channels per group and C channels fit the kernels of this width.
bool channelsFit(int64_t C, int64_t K, int width) {
  if (K < width) return (K == 4 || (K == 8 && width == 16)) && C % width == 0;
  return K % width == 0 && K <= 64;
}

struct Geometry {
  int64_t n, c, h, w, k, s, d, ho, wo;
};

Geometry geometryOf(const at::Tensor& x, int64_t stride, int64_t dilation, int64_t groups) {
  Geometry g{};
  g.n = x.size(0), g.c = x.size(1), g.h = x.size(2), g.w = x.size(3);
  g.k = g.c / groups, g.s = stride, g.d = dilation;
  g.ho = (g.h - 1) / stride + 1;  // (h + 2d - 2d - 1) / s + 1
  g.wo = (g.w - 1) / stride + 1;
  return g;
}

// ---- Layout transposes (NCHW <-> channels-last) -------------------------------------------------

// dst row i = column i of the 8 x 8 block at src (rows `ss` floats apart), written `ds` apart.
__attribute__((target("avx2"))) inline void transpose8x8(const float* src, ptrdiff_t ss, float* dst,
                                                         ptrdiff_t ds) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ss);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ds, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ds, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}

// dst[x * dx + c] = src[c * sc + x] for c < rows, x < cols: a (rows x cols) block transposed, in
// 8 x 8 tiles where they fit and element by element at the edges.
__attribute__((target("avx2"))) void transposeBlockAvx2(const float* src, ptrdiff_t sc,
                                                        int64_t rows, int64_t cols, float* dst,
                                                        ptrdiff_t dx) {
  int64_t c = 0;
  for (; c + 8 <= rows; c += 8) {
    int64_t x = 0;
    for (; x + 8 <= cols; x += 8) transpose8x8(src + c * sc + x, sc, dst + x * dx + c, dx);
    for (; x < cols; ++x)
      for (int64_t k = c; k < c + 8; ++k) dst[x * dx + k] = src[k * sc + x];
  }
  for (; c < rows; ++c)
    for (int64_t x = 0; x < cols; ++x) dst[x * dx + c] = src[c * sc + x];
}

void transposeBlockScalar(const float* src, ptrdiff_t sc, int64_t rows, int64_t cols, float* dst,
                          ptrdiff_t dx) {
  for (int64_t c = 0; c < rows; ++c)
    for (int64_t x = 0; x < cols; ++x) dst[x * dx + c] = src[c * sc + x];
}

using TransposeFn = void (*)(const float*, ptrdiff_t, int64_t, int64_t, float*, ptrdiff_t);

TransposeFn transposeBlock() {
  static const TransposeFn fn = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? &transposeBlockAvx2 : &transposeBlockScalar;
  }();
  return fn;
}

// src (N, C, h, w, any strides) into a channels-last buffer (N, h + 2d, w + 2d, C) with a zero
// border of d pixels.
at::Tensor paddedChannelsLast(const at::Tensor& src, int64_t d) {
  const int64_t N = src.size(0), C = src.size(1), h = src.size(2), w = src.size(3);
  const int64_t hp = h + 2 * d, wp = w + 2 * d;
  auto buf = at::empty({N, hp, wp, C}, src.options().memory_format(at::MemoryFormat::Contiguous));
  const float* s = src.data_ptr<float>();
  float* b = buf.data_ptr<float>();
  const int64_t sn = src.stride(0), sc = src.stride(1), sy = src.stride(2), sx = src.stride(3);
  const bool rows_contiguous = sc == 1 && sx == C;  // channels-last: a row is w * C floats
  const TransposeFn transpose = transposeBlock();
  at::parallel_for(0, N * hp, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / hp, yp = r % hp;
      float* dst = b + r * wp * C;
      if (yp < d || yp >= d + h) {
        std::memset(dst, 0, sizeof(float) * wp * C);
        continue;
      }
      std::memset(dst, 0, sizeof(float) * d * C);
      std::memset(dst + (d + w) * C, 0, sizeof(float) * d * C);
      const float* row = s + n * sn + (yp - d) * sy;
      if (rows_contiguous) {
        std::memcpy(dst + d * C, row, sizeof(float) * w * C);
      } else if (sx == 1) {
        // NCHW rows: the C x w block transposed in 8 x 8 register tiles.
        transpose(row, sc, C, w, dst + d * C, C);
      } else {
        // In blocks of 16 channels: one output cache line per pixel, 16 input streams.
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
          const int64_t c1 = std::min(C, c0 + 16);
          for (int64_t x = 0; x < w; ++x)
            for (int64_t c = c0; c < c1; ++c) dst[(d + x) * C + c] = row[c * sc + x * sx];
        }
      }
    }
  });
  return buf;
}

// A channels-last tensor's NCHW copy, transposed in blocks of 16 channels x 64 pixels, each in
// 8 x 8 register tiles (LibTorch's strided copy is several times slower on these shapes).
at::Tensor toNchw(const at::Tensor& src) {
  const int64_t N = src.size(0), C = src.size(1), hw = src.size(2) * src.size(3);
  auto out = at::empty(src.sizes(), src.options().memory_format(at::MemoryFormat::Contiguous));
  const float* s = src.data_ptr<float>();
  float* o = out.data_ptr<float>();
  constexpr int64_t kC = 16, kP = 64;
  const TransposeFn transpose = transposeBlock();
  const int64_t cblocks = (C + kC - 1) / kC, pblocks = (hw + kP - 1) / kP;
  at::parallel_for(0, N * cblocks * pblocks, 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / (cblocks * pblocks), c0 = (i / pblocks) % cblocks * kC,
                    p0 = i % pblocks * kP;
      const int64_t c1 = std::min(C, c0 + kC), p1 = std::min(hw, p0 + kP);
      const float* sn = s + n * hw * C;
      float* on = o + n * C * hw;
      // Rows of the block: its pixels (C floats apart); columns: its channels.
      transpose(sn + p0 * C + c0, C, p1 - p0, c1 - c0, on + c0 * hw + p0, hw);
    }
  });
  return out;
}

// Weights [C][K][3][3] packed as [C / W][9][K][W]: element [cv][t][k][j] is weight[c][k][t] with
// c = cv * W + j for the forward pass; for grad-input (transpose) the roles of input and output
// channel swap within each group: weight[group(c) * K + k][c % K][t].
at::Tensor packWeights(const at::Tensor& weight, int width, bool transpose) {
  const auto wc = weight.contiguous();
  const int64_t C = wc.size(0), K = wc.size(1);
  auto out = at::empty({C * K * 9}, wc.options());
  const float* w = wc.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for (int64_t c = 0; c < C; ++c) {
    const int64_t cv = c / width, j = c % width, g = c / K;
    for (int64_t t = 0; t < 9; ++t)
      for (int64_t k = 0; k < K; ++k)
        o[((cv * 9 + t) * K + k) * width + j] =
            transpose ? w[((g * K + k) * K + c % K) * 9 + t] : w[(c * K + k) * 9 + t];
  }
  return out;
}

// One convolution pass over a grid of output pixels: rows x cols per image, each output pixel's
// input origin at in + n * in_n + row * in_row + col * in_pix, the output at out + n * out_n +
// row * out_row + col * out_pix (channel 0).
struct ConvPlan {
  const float* in;
  ptrdiff_t in_n, in_row, in_pix;
  Taps taps;
  float* out;
  ptrdiff_t out_n, out_row, out_pix;
  int64_t rows, cols;
};

// The forward's epilogue, on a row the kernels have just written (still in the cache): the bias
// (C floats, or null), then a PReLU with one shared slope where `prelu`.
struct Epilogue {
  const float* bias = nullptr;
  bool prelu = false;
  float slope = 0.f;
  bool any() const { return bias || prelu; }
};

// Applies `e` to `pixels` pixels of channels c0 .. c0 + n, `step` floats apart.
void applyEpilogue(float* __restrict__ out, ptrdiff_t step, int64_t pixels, const Epilogue& e,
                   int64_t c0, int64_t n) {
  const float* __restrict__ b = e.bias ? e.bias + c0 : nullptr;
  const float a = e.slope;
  for (int64_t p = 0; p < pixels; ++p) {
    float* __restrict__ o = out + p * step;
    if (b) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) o[j] += b[j];
    }
    if (e.prelu) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) o[j] = o[j] > 0.f ? o[j] : a * o[j];
    }
  }
}

void runConv(const Kernels& kn, const ConvPlan& plan, const float* wpk, int64_t N, int64_t C,
             int64_t K, const Epilogue& epilogue = {}) {
  if (plan.rows <= 0 || plan.cols <= 0 || plan.taps.n == 0) return;
  const int W = kn.width;
  const bool shuffle = K < W;
  const int R = shuffle ? 1 : ((K / W) % 2 == 0 ? 2 : 1);
  const ConvFn* table =
      shuffle ? (K == 4 ? kn.shuffle4 : kn.shuffle8) : (R == 2 ? kn.broadcast2 : kn.broadcast1);
  const int64_t blocks = C / (W * R);
  const ptrdiff_t wr = 9 * K * W;
  // Narrow maps (broadcast kernels only): two rows per call.
  const bool two_rows = !shuffle && plan.cols <= kn.max_pixels_2rows && plan.rows >= 2;
  const ConvRowsFn* table2 = R == 2 ? kn.broadcast2_2rows : kn.broadcast1_2rows;
  const int64_t row_step = two_rows ? 2 : 1;
  const int64_t max_p = two_rows ? kn.max_pixels_2rows : kn.max_pixels;
  const int64_t row_blocks = (plan.cols + max_p - 1) / max_p;
  const int64_t P = (plan.cols + row_blocks - 1) / row_blocks;
  const int64_t row_groups = (plan.rows + row_step - 1) / row_step;
  const int64_t items = N * row_groups;
  // Channel blocks innermost: a row's input pixels are read whole, from the L2 cache, while the
  // blocks' weights come and go.
  at::parallel_for(0, blocks * items, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t cb = i % blocks, n = (i / blocks) / row_groups;
      const int64_t r = (i / blocks) % row_groups * row_step;
      const bool pair = two_rows && r + 1 < plan.rows;
      const int64_t c0 = cb * W * R;
      const int64_t in_c = shuffle ? c0 : (c0 / K) * K;
      const float* row = plan.in + n * plan.in_n + r * plan.in_row + in_c;
      const float* wb = wpk + cb * R * wr;
      float* orow = plan.out + n * plan.out_n + r * plan.out_row + c0;
      for (int64_t col = 0; col < plan.cols; col += P) {
        const int64_t p = std::min(P, plan.cols - col);
        if (pair)
          table2[p](row + col * plan.in_pix, plan.in_pix, plan.taps, wb, wr, static_cast<int>(K),
                    orow + col * plan.out_pix, plan.out_pix, plan.in_row, plan.out_row);
        else
          table[p](row + col * plan.in_pix, plan.in_pix, plan.taps, wb, wr, static_cast<int>(K),
                   orow + col * plan.out_pix, plan.out_pix);
      }
      if (epilogue.any()) {
        applyEpilogue(orow, plan.out_pix, plan.cols, epilogue, c0, W * R);
        if (pair) applyEpilogue(orow + plan.out_row, plan.out_pix, plan.cols, epilogue, c0, W * R);
      }
    }
  });
}

// dw [C][K][3][3] = gradient of the convolution's weights, from the padded input xp
// (N, hp, wp, C) and the output gradient dy (channels-last, dy_n / dy_y / dy_x floats between
// images / rows / pixels). Items (vector of channels, input-channel chunk, kernel row) own
// disjoint weights; each thread takes a range of items and sums the output rows in chunks of a
// fixed size, every item of its range per chunk, so that the chunk's input and output-gradient
// rows stay in the core's L2 cache. Each weight's sum has the same order on any number of threads.
void runGradWeight(const Kernels& kn, const float* xp, int64_t hp, int64_t wp, const float* dy,
                   ptrdiff_t dy_n, ptrdiff_t dy_y, ptrdiff_t dy_x, int64_t N, int64_t C, int64_t K,
                   int64_t s, int64_t d, int64_t ho, int64_t wo, float* dw) {
  const int W = kn.width;
  const bool shuffle = K < W;
  const int64_t KB = shuffle ? K : kn.gw_chunk;
  const GradWeightFn fn = shuffle ? (K == 4 ? kn.gw_shuffle4 : kn.gw_shuffle8) : kn.gw_broadcast;
  const int64_t vectors = C / W, chunks = K / KB, items = vectors * chunks * 3;
  const int64_t per_item = 3 * KB * W;
  // Bytes an output row's pass reads: (s + 2d) input rows and one output-gradient row.
  const int64_t row_bytes = ((s + 2 * d) * wp + wo) * C * int64_t{sizeof(float)};
  const int64_t rows = N * ho;
  const int64_t chunk_rows = std::clamp<int64_t>((int64_t{512} << 10) / row_bytes, 1, rows);
  std::vector<float> sums(static_cast<size_t>(items * per_item));
  at::parallel_for(0, items, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows)
      for (int64_t i = begin; i < end; ++i) {
        const int64_t cv = i / (chunks * 3), kc = (i / 3) % chunks, ky = i % 3;
        GwArgs a{};
        a.dy = dy + cv * W;
        a.dy_x = dy_x, a.dy_y = dy_y, a.dy_n = dy_n;
        a.in = xp + ky * d * wp * C + (shuffle ? cv * W : (cv * W / K) * K + kc * KB);
        a.in_x = s * C, a.in_y = s * wp * C, a.in_n = hp * wp * C;
        a.toff[0] = 0, a.toff[1] = d * C, a.toff[2] = 2 * d * C;
        a.row_begin = static_cast<int>(r0);
        a.row_end = static_cast<int>(std::min(rows, r0 + chunk_rows));
        a.ho = static_cast<int>(ho), a.wo = static_cast<int>(wo);
        a.accumulate = r0 > 0;
        fn(a, sums.data() + i * per_item);
      }
    for (int64_t i = begin; i < end; ++i) {
      const int64_t cv = i / (chunks * 3), kc = (i / 3) % chunks, ky = i % 3;
      const float* acc = sums.data() + i * per_item;
      for (int64_t t = 0; t < 3; ++t)
        for (int64_t m = 0; m < KB; ++m)
          for (int64_t j = 0; j < W; ++j) {
            const float v = acc[(t * KB + m) * W + j];
            const int64_t c = cv * W + j;
            if (shuffle)  // lane j: input channel c % K of output channel group(c) * K + m
              dw[(((c / K) * K + m) * K + c % K) * 9 + ky * 3 + t] = v;
            else  // lane j: output channel c, input channel kc * KB + m
              dw[(c * K + kc * KB + m) * 9 + ky * 3 + t] = v;
          }
    }
  });
}

const Kernels& kernelsOrThrow() {
  const Kernels* k = activeKernels().load(std::memory_order_relaxed);
  if (!k) throw Error("grouped convolution kernels: this CPU has neither AVX-512 nor AVX2 + FMA");
  return *k;
}

at::MemoryFormat formatOf(const at::Tensor& t) {
  return t.suggest_memory_format() == at::MemoryFormat::ChannelsLast
             ? at::MemoryFormat::ChannelsLast
             : at::MemoryFormat::Contiguous;
}

// `slope`: a shared PReLU slope applied in the epilogue (undefined: none).
at::Tensor forwardImpl(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                       const Geometry& g, const at::Tensor& slope = {}) {
  const Kernels& kn = kernelsOrThrow();
  const int64_t hp = g.h + 2 * g.d, wp = g.w + 2 * g.d, C = g.c;
  const auto xp = paddedChannelsLast(x, g.d);
  const auto wpk = packWeights(weight, kn.width, false);
  auto y =
      at::empty({g.n, g.c, g.ho, g.wo}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  ConvPlan plan{};
  plan.in = xp.data_ptr<float>();
  plan.in_n = hp * wp * C, plan.in_row = g.s * wp * C, plan.in_pix = g.s * C;
  plan.taps.n = 9;
  for (int64_t t = 0; t < 9; ++t) {
    plan.taps.in[t] = ((t / 3) * g.d * wp + (t % 3) * g.d) * C;
    plan.taps.w[t] = t * g.k * kn.width;
  }
  plan.out = y.data_ptr<float>();
  plan.out_n = g.ho * g.wo * C, plan.out_row = g.wo * C, plan.out_pix = C;
  plan.rows = g.ho, plan.cols = g.wo;
  const auto b = bias.defined() ? bias.contiguous() : bias;
  Epilogue e;
  e.bias = b.defined() ? b.data_ptr<float>() : nullptr;
  e.prelu = slope.defined();
  if (e.prelu) e.slope = slope.item<float>();
  runConv(kn, plan, wpk.data_ptr<float>(), g.n, C, g.k, e);
  return formatOf(x) == at::MemoryFormat::ChannelsLast ? y : toNchw(y);
}

// Grad-input from the padded output gradient dyp (N, ho + 2d, wo + 2d, C): input pixel iy gets
// dy[oy] * w[ty] wherever iy = s * oy + d * (ty - 1), i.e. oy = (iy + d * (1 - ty)) / s when that
// divides. For stride 2 the input pixels fall into 4 parity classes (iy % 2, ix % 2), each a
// stride-1 convolution of dy with the taps whose offsets divide (all 9 for an even dilation and
// even pixels, none for odd ones; 1, 2 or 4 for an odd dilation).
at::Tensor gradInputImpl(const at::Tensor& dyp, const at::Tensor& weight, const Geometry& g,
                         at::MemoryFormat format) {
  const Kernels& kn = kernelsOrThrow();
  const int64_t hpd = g.ho + 2 * g.d, wpd = g.wo + 2 * g.d, C = g.c;
  const auto wpk = packWeights(weight, kn.width, true);
  auto dx =
      at::empty({g.n, g.c, g.h, g.w}, dyp.options().memory_format(at::MemoryFormat::ChannelsLast));
  const int64_t s = g.s;
  for (int64_t py = 0; py < s; ++py)
    for (int64_t px = 0; px < s; ++px) {
      ConvPlan plan{};
      plan.in = dyp.data_ptr<float>();
      plan.in_n = hpd * wpd * C, plan.in_row = wpd * C, plan.in_pix = C;
      for (int64_t t = 0; t < 9; ++t) {
        const int64_t oy = py + g.d * (1 - t / 3), ox = px + g.d * (1 - t % 3);
        if (oy % s != 0 || ox % s != 0) continue;
        plan.taps.in[plan.taps.n] = ((g.d + oy / s) * wpd + (g.d + ox / s)) * C;
        plan.taps.w[plan.taps.n] = t * g.k * kn.width;
        ++plan.taps.n;
      }
      plan.out = dx.data_ptr<float>() + (py * g.w + px) * C;
      plan.out_n = g.h * g.w * C, plan.out_row = s * g.w * C, plan.out_pix = s * C;
      plan.rows = (g.h - py + s - 1) / s, plan.cols = (g.w - px + s - 1) / s;
      if (plan.taps.n == 0) {
        // No tap reaches these pixels (even dilation, odd pixels): their gradient is zero.
        dx.slice(2, py, c10::nullopt, s).slice(3, px, c10::nullopt, s).zero_();
        continue;
      }
      runConv(kn, plan, wpk.data_ptr<float>(), g.n, C, g.k);
    }
  return format == at::MemoryFormat::ChannelsLast ? dx : toNchw(dx);
}

at::Tensor gradWeightImpl(const at::Tensor& x, const at::Tensor& dyp, const Geometry& g) {
  const Kernels& kn = kernelsOrThrow();
  const int64_t hp = g.h + 2 * g.d, wp = g.w + 2 * g.d, C = g.c;
  const int64_t wpd = g.wo + 2 * g.d, hpd = g.ho + 2 * g.d;
  const auto xp = paddedChannelsLast(x, g.d);
  auto dw = at::empty({g.c, g.k, 3, 3}, x.options().memory_format(at::MemoryFormat::Contiguous));
  runGradWeight(kn, xp.data_ptr<float>(), hp, wp, dyp.data_ptr<float>() + (g.d * wpd + g.d) * C,
                hpd * wpd * C, wpd * C, C, g.n, C, g.k, g.s, g.d, g.ho, g.wo, dw.data_ptr<float>());
  return dw;
}

// LibTorch's passes, for the ones a plan leaves to it.
at::Tensor libForward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                      const Geometry& g) {
  return at::convolution(x, weight, bias, {g.s, g.s}, {g.d, g.d}, {g.d, g.d}, false, {0, 0},
                         g.c / g.k);
}
std::tuple<at::Tensor, at::Tensor, at::Tensor> libBackward(const at::Tensor& dy,
                                                           const at::Tensor& x,
                                                           const at::Tensor& weight,
                                                           const Geometry& g, bool dx, bool dw) {
  return at::convolution_backward(dy, x, weight, c10::nullopt, {g.s, g.s}, {g.d, g.d}, {g.d, g.d},
                                  false, {0, 0}, g.c / g.k, {dx, dw, false});
}

struct GroupConvFunction : public torch::autograd::Function<GroupConvFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                            int64_t dilation, int64_t groups, int64_t passes) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["dilation"] = dilation;
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["passes"] = passes;
    const Geometry g = geometryOf(x, stride, dilation, groups);
    const auto b = bias.numel() > 0 ? bias : at::Tensor();
    return (passes & 1) ? forwardImpl(x, weight, b, g) : libForward(x, weight, b, g);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    const Geometry g =
        geometryOf(x, ctx->saved_data["stride"].toInt(), ctx->saved_data["dilation"].toInt(),
                   ctx->saved_data["groups"].toInt());
    const int64_t passes = ctx->saved_data["passes"].toInt();
    const bool want_dx = ctx->needs_input_grad(0), want_dw = ctx->needs_input_grad(1);
    const bool our_dx = want_dx && (passes & 2), our_dw = want_dw && (passes & 4);
    at::Tensor dx, dw;
    // The output gradient, zero-bordered, serves both of our passes.
    if (our_dx || our_dw) {
      const auto dyp = paddedChannelsLast(grads[0], g.d);
      if (our_dx) dx = gradInputImpl(dyp, weight, g, formatOf(x));
      if (our_dw) dw = gradWeightImpl(x, dyp, g);
    }
    if ((want_dx && !our_dx) || (want_dw && !our_dw)) {
      auto lib = libBackward(grads[0].contiguous(formatOf(x)), x, weight, g, want_dx && !our_dx,
                             want_dw && !our_dw);
      if (want_dx && !our_dx) dx = std::get<0>(lib);
      if (want_dw && !our_dw) dw = std::get<1>(lib);
    }
    at::Tensor db;  // the bias's gradient: the output gradient summed over images and pixels
    if (ctx->needs_input_grad(2)) db = grads[0].sum({0, 2, 3});  // never for the stand-in
    return {dx, dw, db, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

int64_t passBits(const GroupConvPasses& p) {
  return (p.forward ? 1 : 0) | (p.grad_input ? 2 : 0) | (p.grad_weight ? 4 : 0);
}

// ---- The per-shape choice ----------------------------------------------------------------------

// Batch, channels, map, groups, stride, dilation, channels-last, vector width, forward only, bias,
// channels-last weights: everything the timing depends on.
using ShapeKey = std::array<int64_t, 12>;

std::mutex g_decisions_mutex;
// The plan per shape; nullopt: LibTorch runs the convolution whole.
std::map<ShapeKey, std::optional<GroupConvPasses>>& decisions() {
  static std::map<ShapeKey, std::optional<GroupConvPasses>> m;
  return m;
}

// Seconds of one call, the fastest of `reps`.
template <typename Call>
double fastest(const Call& call, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Times ours against LibTorch's for this shape and returns the plan (nullopt: LibTorch whole).
// Inference (no gradient wanted): the forward alone, with the bias where there is one. Training:
// each pass of each (forward; grad-input; grad-weight, each with its zero-bordered copies) picks
// the faster, and that mix, run end to end through the autograd node, must beat LibTorch's
// forward + backward end to end (whose backward computes both gradients in one call).
std::optional<GroupConvPasses> measurePlan(const at::Tensor& input, const at::Tensor& weight,
                                           bool has_bias, int64_t stride, int64_t dilation,
                                           int64_t groups, ShapeKey key) {
  const bool forward_only = key[9] != 0;
  c10::InferenceMode not_inference(false);
  at::AutoGradMode grad(true);
  const auto format = formatOf(input);
  const Geometry g = geometryOf(input, stride, dilation, groups);
  // A generator of its own: the first call with a shape must not move the global random stream.
  at::Generator gen = at::detail::createCPUGenerator(20261203);
  const auto x = at::randn(input.sizes(), gen, at::kFloat).contiguous(format).requires_grad_();
  const auto w = (at::randn(weight.sizes(), gen, at::kFloat) * 0.1)
                     .contiguous(weight.suggest_memory_format())
                     .requires_grad_();
  const auto dy = at::randn({g.n, g.c, g.ho, g.wo}, gen, at::kFloat).contiguous(format);
  const auto bias = has_bias ? at::randn({g.c}, gen, at::kFloat) : at::Tensor();
  const auto xd = x.detach(), wd = w.detach();
  // Alternating rounds, keeping each one's fastest: 3 rounds, 1 where a call takes over 50 ms.
  const auto race = [](const auto& a, const auto& b, double& ta, double& tb) {
    fastest(a, 1);  // warm-up: oneDNN's primitives, the allocator's blocks
    fastest(b, 1);
    ta = fastest(a, 1);
    tb = fastest(b, 1);
    const int rounds = std::max(ta, tb) > 0.05 ? 1 : 3;
    for (int r = 0; r < rounds; ++r) {
      ta = std::min(ta, fastest(a, 1));
      tb = std::min(tb, fastest(b, 1));
    }
  };
  GroupConvPasses plan;
  double t_ours = 0, t_lib = 0;
  char detail[160] = "";
  {
    at::NoGradGuard no_grad;
    race([&] { forwardImpl(xd, wd, bias, g); }, [&] { libForward(xd, wd, bias, g); }, t_ours,
         t_lib);
  }
  plan.forward = t_ours < t_lib;
  if (forward_only) {
    plan.grad_input = plan.grad_weight = false;
  } else {
    double gi_ours = 0, gi_lib = 0, gw_ours = 0, gw_lib = 0;
    race([&] { gradInputImpl(paddedChannelsLast(dy, g.d), wd, g, format); },
         [&] { libBackward(dy, xd, wd, g, true, false); }, gi_ours, gi_lib);
    race([&] { gradWeightImpl(xd, paddedChannelsLast(dy, g.d), g); },
         [&] { libBackward(dy, xd, wd, g, false, true); }, gw_ours, gw_lib);
    plan.grad_input = gi_ours < gi_lib;
    plan.grad_weight = gw_ours < gw_lib;
    std::snprintf(detail, sizeof detail,
                  " (forward %.3f / %.3f, grad-input %.3f / %.3f, grad-weight %.3f / %.3f ms)",
                  t_ours * 1e3, t_lib * 1e3, gi_ours * 1e3, gi_lib * 1e3, gw_ours * 1e3,
                  gw_lib * 1e3);
    if (plan.any()) {
      const int64_t bits = passBits(plan);
      const auto b = has_bias ? bias : at::empty({0}, wd.options());
      race(
          [&] {
            const auto y = GroupConvFunction::apply(x, w, b, stride, dilation, groups, bits);
            torch::autograd::grad({y}, {x, w}, {dy});
          },
          [&] {
            const auto y = at::convolution(x, w, bias, {stride, stride}, {dilation, dilation},
                                           {dilation, dilation}, false, {0, 0}, groups);
            torch::autograd::grad({y}, {x, w}, {dy});
          },
          t_ours, t_lib);
    }
  }
  const bool use = plan.any() && t_ours < t_lib;
  if (kernelsLog())
    std::fprintf(stderr,
                 "msconv: grouped 3x3 conv N%lld C%lld %lldx%lld groups %lld stride %lld dilation "
                 "%lld %s%s: ours %.3f ms, oneDNN %.3f ms%s -> %s%s%s%s\n",
                 static_cast<long long>(key[0]), static_cast<long long>(key[1]),
                 static_cast<long long>(key[2]), static_cast<long long>(key[3]),
                 static_cast<long long>(key[4]), static_cast<long long>(key[5]),
                 static_cast<long long>(key[6]), key[7] ? "channels-last" : "NCHW",
                 forward_only ? ", forward only" : ", forward + backward", t_ours * 1e3,
                 t_lib * 1e3, detail, use ? "ours:" : "oneDNN",
                 use && plan.forward ? " forward" : "", use && plan.grad_input ? " grad-input" : "",
                 use && plan.grad_weight ? " grad-weight" : "");
  if (!use) return std::nullopt;
  return plan;
}

// No gradient will be asked of this call: inference (InferenceMode, no-grad, or inputs that
// require none). Then only the forward's speed counts. (A bias that requires a gradient is a
// parameter beside a weight that requires one too: the weight's flag stands for both.)
bool forwardOnly(const at::Tensor& input, const at::Tensor& weight) {
  return !at::GradMode::is_enabled() || (!input.requires_grad() && !weight.requires_grad());
}

bool intsAre(at::IntArrayRef a, int64_t v) {
  return a.size() == 2 && a[0] == v && a[1] == v;
}

}  // namespace

bool groupConvSupported(const at::Tensor& input, const at::Tensor& weight, bool has_bias,
                        at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                        at::IntArrayRef dilation, int64_t groups) {
  const Kernels* kn = activeKernels().load(std::memory_order_relaxed);
  (void)has_bias;  // a bias is added in the forward's epilogue
  if (!kn || !input.defined() || !weight.defined()) return false;
  if (input.dim() != 4 || weight.dim() != 4 || !input.device().is_cpu() ||
      !weight.device().is_cpu() || input.scalar_type() != at::kFloat ||
      weight.scalar_type() != at::kFloat || input.is_mkldnn() || input.is_sparse())
    return false;
  if (!intsAre(kernel, 3) || stride.size() != 2 || stride[0] != stride[1] ||
      (stride[0] != 1 && stride[0] != 2) || dilation.size() != 2 || dilation[0] != dilation[1] ||
      dilation[0] < 1 || dilation[0] > 3 || !intsAre(padding, dilation[0]))
    return false;
  const int64_t C = input.size(1);
  if (groups < 1 || C % groups != 0) return false;
  const int64_t K = C / groups;
  if (weight.size(0) != C || weight.size(1) != K || weight.size(2) != 3 || weight.size(3) != 3)
    return false;
  if (input.size(0) < 1 || input.size(2) < 1 || input.size(3) < 1) return false;
  return channelsFit(C, K, kn->width);
}

namespace {

// Throws msconv::Error unless the kernels take this convolution and the bias is C float32 values.
void checkArguments(const at::Tensor& input, const at::Tensor& weight, int64_t stride,
                    int64_t dilation, int64_t groups, const at::Tensor& bias) {
  if (!groupConvSupported(input, weight, bias.defined(), {3, 3}, {stride, stride},
                          {dilation, dilation}, {dilation, dilation}, groups))
    throw Error("grouped 3x3 convolution: unsupported shape " + std::to_string(input.dim()) +
                "-d input " + input.toString() + " with groups " + std::to_string(groups));
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != input.size(1) ||
                         bias.scalar_type() != at::kFloat || !bias.device().is_cpu()))
    throw Error("grouped 3x3 convolution: the bias must be " + std::to_string(input.size(1)) +
                " float32 CPU values, got " + bias.toString() + " of " +
                std::to_string(bias.numel()));
}

}  // namespace

at::Tensor groupConv3x3Inference(const at::Tensor& input, const at::Tensor& weight, int64_t stride,
                                 int64_t dilation, int64_t groups, const at::Tensor& bias,
                                 const at::Tensor& slope) {
  checkArguments(input, weight, stride, dilation, groups, bias);
  if (slope.defined() &&
      (slope.numel() != 1 || slope.scalar_type() != at::kFloat || !slope.device().is_cpu()))
    throw Error(
        "grouped 3x3 convolution: the epilogue's PReLU takes one shared float32 slope, "
        "got " +
        slope.toString() + " of " + std::to_string(slope.numel()));
  if (c10::GradMode::is_enabled() &&
      (input.requires_grad() || weight.requires_grad() ||
       (bias.defined() && bias.requires_grad()) || (slope.defined() && slope.requires_grad())))
    throw Error("grouped 3x3 convolution: the inference form's forward takes no gradient");
  return forwardImpl(input, weight, bias, geometryOf(input, stride, dilation, groups), slope);
}

at::Tensor groupConv3x3(const at::Tensor& input, const at::Tensor& weight, int64_t stride,
                        int64_t dilation, int64_t groups, const at::Tensor& bias,
                        const GroupConvPasses& passes) {
  checkArguments(input, weight, stride, dilation, groups, bias);
  // No bias: an empty stand-in (autograd's Function takes no undefined tensor input).
  return GroupConvFunction::apply(input, weight,
                                  bias.defined() ? bias : at::empty({0}, weight.options()), stride,
                                  dilation, groups, passBits(passes));
}

std::optional<GroupConvPasses> groupConvPlan(const at::Tensor& input, const at::Tensor& weight,
                                             bool has_bias, at::IntArrayRef kernel,
                                             at::IntArrayRef stride, at::IntArrayRef padding,
                                             at::IntArrayRef dilation, int64_t groups) {
  if (!customKernels() ||
      !groupConvSupported(input, weight, has_bias, kernel, stride, padding, dilation, groups))
    return std::nullopt;
  const Kernels* kn = activeKernels().load(std::memory_order_relaxed);
  const ShapeKey key{
      input.size(0),    input.size(1),
      input.size(2),    input.size(3),
      groups,           stride[0],
      dilation[0],      formatOf(input) == at::MemoryFormat::ChannelsLast ? 1 : 0,
      kn->width,        forwardOnly(input, weight) ? 1 : 0,
      has_bias ? 1 : 0, weight.suggest_memory_format() == at::MemoryFormat::ChannelsLast ? 1 : 0};
  {
    std::lock_guard<std::mutex> lock(g_decisions_mutex);
    const auto it = decisions().find(key);
    if (it != decisions().end()) return it->second;
  }
  // Timed without the lock (a convolution may take long); should two threads time the same
  // shape at once, the first decision stored is the one every later call gets.
  const auto plan = measurePlan(input, weight, has_bias, stride[0], dilation[0], groups, key);
  std::lock_guard<std::mutex> lock(g_decisions_mutex);
  return decisions().emplace(key, plan).first->second;
}

bool groupConvChosen(const at::Tensor& input, const at::Tensor& weight, bool has_bias,
                     at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                     at::IntArrayRef dilation, int64_t groups) {
  return groupConvPlan(input, weight, has_bias, kernel, stride, padding, dilation, groups)
      .has_value();
}

std::string groupConvIsa() {
  const Kernels* k = activeKernels().load(std::memory_order_relaxed);
  return k ? k->name : "none";
}

void setGroupConvIsa(const std::string& isa) {
  const Kernels* best = bestKernels();
  const Kernels* want = nullptr;
  if (isa.empty())
    want = best;
  else if (isa == "avx512" && best == &avx512::table)
    want = &avx512::table;
  else if (isa == "avx2" && best)
    want = &avx2::table;
  else
    throw Error("grouped 3x3 convolution: this CPU has no '" + isa + "' kernels (it has '" +
                (best ? best->name : "none") + "')");
  activeKernels().store(want, std::memory_order_relaxed);
}

size_t groupConvDecisionCount() {
  std::lock_guard<std::mutex> lock(g_decisions_mutex);
  return decisions().size();
}

void clearGroupConvDecisions() {
  std::lock_guard<std::mutex> lock(g_decisions_mutex);
  decisions().clear();
}

}  // namespace msconv::nn
