// MSConv's fusion stage as one fused operation. After the two branch convolutions, the composed
// form reads and writes the N x C x H x W maps many times (U1*U2, its pooling, U1-U2, c*(U1-U2),
// the final add, and as many again backwards). The fused form:
//   forward:  s = mean_HW(U1 * U2) in one pass (U1*U2 never materialised); the gate network
//             c = gate(s) runs on the small N x C x 1 x 1 tensors (the MSConv layers pass one that
//             is itself one fused node in training, nn/gate_net.h); V = U2 + c * D
//             (D = U1 - U2, or U1 + U2 for the "diff add" switch) in a second pass;
//   backward: dc = sum_HW(dV * D) in one pass, then the gate network's backward (to ds and the
//             gate's parameters), then dU1 = c dV + ds/HW U2 and dU2 = (1 -/+ c) dV + ds/HW U1
//             in a final pass.
// CPU kernels are vectorised (AVX-512 or AVX2 chosen at run time, plain loops otherwise) and
// parallel over LibTorch's intra-op threads, for contiguous NCHW and channels-last tensors. A CUDA
// version of the same kernels sits in fusion_kernels.cu.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>

namespace msconv::nn {

struct FusionResult {
  at::Tensor v;     // U2 + c * D
  at::Tensor s, c;  // pooled and gate (N x C x 1 x 1), for taps; detached
};

// The gate network: s (N x C x 1 x 1) -> c (N x C x 1 x 1), built from LibTorch modules.
using GateFn = std::function<at::Tensor(const at::Tensor&)>;

// One autograd node for the stage. The gate network's parameters receive their gradients when
// the graph is run backward (through a nested backward, as reentrant checkpointing does).
// `diff_add`: D = U1 + U2 instead of U1 - U2.
FusionResult fusedMsFusion(const at::Tensor& u1, const at::Tensor& u2, const GateFn& gate,
                           bool diff_add = false);

// The same stage written with separate tensor operations (the reference and the fallback).
FusionResult composedMsFusion(const at::Tensor& u1, const at::Tensor& u2, const GateFn& gate,
                              bool diff_add = false);

// Whether MSConv layers use the fused stage: on by default; MSCONV_FUSED=0 in the environment or
// setFusedFusion(false) switches back to the composed form (for comparisons).
bool fusedFusionEnabled();
void setFusedFusion(bool on);

// The raw kernels (CPU), exposed for tests and benchmarks. Shapes N x C x H x W, contiguous in
// NCHW or channels-last (all tensors alike); s, c, ds, dc are N x C x 1 x 1 float.
at::Tensor fusionPool(const at::Tensor& u1, const at::Tensor& u2);  // s
at::Tensor fusionMix(const at::Tensor& u1, const at::Tensor& u2, const at::Tensor& c,
                     bool diff_add);  // V
at::Tensor fusionGateGrad(const at::Tensor& dv, const at::Tensor& u1, const at::Tensor& u2,
                          bool diff_add);  // dc
void fusionInputGrad(const at::Tensor& dv, const at::Tensor& u1, const at::Tensor& u2,
                     const at::Tensor& c, const at::Tensor& ds, bool diff_add, at::Tensor& du1,
                     at::Tensor& du2);

}  // namespace msconv::nn
