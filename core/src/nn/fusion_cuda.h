// Internal: CUDA launchers for the fused MSConv stage (fusion_kernels.cu). Plain pointers and
// sizes, no LibTorch types, so the kernels compile with nvcc without a CUDA-enabled LibTorch.
// Tensors are N x C x H x W float, NCHW (channels_last false) or NHWC; s, c, ds, dc are N x C.
// sg = -1: D = U1 - U2; +1: D = U1 + U2. `stream` is a cudaStream_t. Return cudaError_t as int.
#pragma once

#include <cstdint>

namespace msconv::nn::cuda {

int fusionPool(const float* u1, const float* u2, float* s, int64_t n, int64_t c, int64_t hw,
               bool channels_last, void* stream);
int fusionMix(const float* u1, const float* u2, const float* gate, float* v, float sg, int64_t n,
              int64_t c, int64_t hw, bool channels_last, void* stream);
int fusionGateGrad(const float* dv, const float* u1, const float* u2, float* dc, float sg,
                   int64_t n, int64_t c, int64_t hw, bool channels_last, void* stream);
int fusionInputGrad(const float* dv, const float* u1, const float* u2, const float* gate,
                    const float* ds, float* du1, float* du2, float sg, int64_t n, int64_t c,
                    int64_t hw, bool channels_last, void* stream);

}  // namespace msconv::nn::cuda
