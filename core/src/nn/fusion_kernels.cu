// CUDA kernels of the fused MSConv stage (see msconv/nn/fusion.h for the maths): channel sums of
// products (pooling and the gate gradient) and the element-wise mix and input gradients, for NCHW
// and channels-last float tensors.
#include <cuda_runtime.h>

#include "fusion_cuda.h"

namespace msconv::nn::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide sum; the result is valid in thread 0.
__device__ float blockSum(float v) {
  __shared__ float part[kThreads / 32];
  v = warpSum(v);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  v = threadIdx.x < kThreads / 32 ? part[threadIdx.x] : 0.f;
  if (threadIdx.x < 32) v = warpSum(v);
  return v;
}

// NCHW: one block per (n, c) plane. out[p] = scale * sum_i a[i] * (b[i] or (x[i] + sg * y[i])).
// With x == nullptr: sum of a * b (pooling); otherwise sum of a * (x + sg * y) (gate gradient).
__global__ void planeSums(const float* __restrict__ a, const float* __restrict__ b,
                          const float* __restrict__ x, float sg, float* __restrict__ out,
                          int64_t hw, float scale) {
  const int64_t p = blockIdx.x;
  const float* pa = a + p * hw;
  const float* pb = b + p * hw;
  const float* px = x ? x + p * hw : nullptr;
  float acc = 0.f;
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x)
    acc += px ? pa[i] * (pb[i] + sg * px[i]) : pa[i] * pb[i];
  acc = blockSum(acc);
  if (threadIdx.x == 0) out[p] = acc * scale;
}

// NHWC: block (32 channels x 8 row groups) per (n, channel tile); rows of image n summed.
__global__ void channelSums(const float* __restrict__ a, const float* __restrict__ b,
                            const float* __restrict__ x, float sg, float* __restrict__ out,
                            int64_t c, int64_t hw, float scale) {
  __shared__ float part[8][33];
  const int64_t n = blockIdx.y;
  const int64_t ch = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.f;
  if (ch < c) {
    for (int64_t r = threadIdx.y; r < hw; r += blockDim.y) {
      const int64_t i = (n * hw + r) * c + ch;
      acc += x ? a[i] * (b[i] + sg * x[i]) : a[i] * b[i];
    }
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && ch < c) {
    float s = 0.f;
    for (int k = 0; k < 8; ++k) s += part[k][threadIdx.x];
    out[n * c + ch] = s * scale;
  }
}

__device__ __forceinline__ int64_t planeOf(int64_t i, int64_t c, int64_t hw, bool cl) {
  return cl ? (i / (hw * c)) * c + i % c : i / hw;
}

__global__ void mix(const float* __restrict__ u1, const float* __restrict__ u2,
                    const float* __restrict__ gate, float* __restrict__ v, float sg, int64_t total,
                    int64_t c, int64_t hw, bool cl) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = gate[planeOf(i, c, hw, cl)];
    v[i] = u2[i] + g * (u1[i] + sg * u2[i]);
  }
}

__global__ void inputGrad(const float* __restrict__ dv, const float* __restrict__ u1,
                          const float* __restrict__ u2, const float* __restrict__ gate,
                          const float* __restrict__ ds, float* __restrict__ du1,
                          float* __restrict__ du2, float sg, int64_t total, int64_t c, int64_t hw,
                          bool cl) {
  const float inv = 1.f / static_cast<float>(hw);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = planeOf(i, c, hw, cl);
    const float g = gate[p], q = ds[p] * inv, d = dv[i];
    du1[i] = g * d + q * u2[i];
    du2[i] = (1.f + sg * g) * d + q * u1[i];
  }
}

int elementwiseBlocks(int64_t total) {
  const int64_t b = (total + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

int sums(const float* a, const float* b, const float* x, float sg, float* out, int64_t n, int64_t c,
         int64_t hw, bool cl, float scale, cudaStream_t st) {
  if (cl) {
    const dim3 grid(static_cast<unsigned>((c + 31) / 32), static_cast<unsigned>(n));
    channelSums<<<grid, dim3(32, 8), 0, st>>>(a, b, x, sg, out, c, hw, scale);
  } else {
    planeSums<<<static_cast<unsigned>(n * c), kThreads, 0, st>>>(a, b, x, sg, out, hw, scale);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int fusionPool(const float* u1, const float* u2, float* s, int64_t n, int64_t c, int64_t hw,
               bool channels_last, void* stream) {
  return sums(u1, u2, nullptr, 0.f, s, n, c, hw, channels_last, 1.f / static_cast<float>(hw),
              static_cast<cudaStream_t>(stream));
}

int fusionGateGrad(const float* dv, const float* u1, const float* u2, float* dc, float sg,
                   int64_t n, int64_t c, int64_t hw, bool channels_last, void* stream) {
  // sum dv * (u1 + sg * u2): a = dv, b = u1, x = u2.
  return sums(dv, u1, u2, sg, dc, n, c, hw, channels_last, 1.f, static_cast<cudaStream_t>(stream));
}

int fusionMix(const float* u1, const float* u2, const float* gate, float* v, float sg, int64_t n,
              int64_t c, int64_t hw, bool channels_last, void* stream) {
  const int64_t total = n * c * hw;
  mix<<<elementwiseBlocks(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      u1, u2, gate, v, sg, total, c, hw, channels_last);
  return static_cast<int>(cudaGetLastError());
}

int fusionInputGrad(const float* dv, const float* u1, const float* u2, const float* gate,
                    const float* ds, float* du1, float* du2, float sg, int64_t n, int64_t c,
                    int64_t hw, bool channels_last, void* stream) {
  const int64_t total = n * c * hw;
  inputGrad<<<elementwiseBlocks(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      dv, u1, u2, gate, ds, du1, du2, sg, total, c, hw, channels_last);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace msconv::nn::cuda
