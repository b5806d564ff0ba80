// The inference form's convolutions with their epilogue fused: y = act(conv(x, w) + b + residual)
// as one oneDNN primitive (the library LibTorch itself runs convolutions with, called directly
// because LibTorch 1.13 does not expose oneDNN's post-ops): the bias, the residual add and the
// ReLU / PReLU (shared or per-channel slope) are applied while each output block is still in
// registers, and the weights are reordered into the primitive's layout once, not at every call.
// Used only where no gradient is wanted; anything it does not cover returns an undefined tensor
// and the caller runs the composed form.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <memory>

namespace msconv::nn {

// A convolution module's fused-inference cache: primitives by input shape and epilogue, and the
// weights in oneDNN's layout. Lives with the module (its weights), so nothing outlives them.
struct InferenceConvState;

struct ConvGeometry {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};

// What follows the convolution and its bias, in this order: + residual (the output's shape), then
// ReLU, or PReLU with `slope` ([1]: one shared slope; [Cout]: one per channel).
struct ConvEpilogue {
  at::Tensor residual;
  // The caller no longer needs the residual: the output may be written over it (saves a copy).
  bool residual_writable = false;
  at::Tensor slope;
  bool relu = false;
  bool empty() const { return !residual.defined() && !slope.defined() && !relu; }
};

// Whether this build has the fused path (oneDNN's headers were found), and whether it is on now:
// compiled, customKernels(), and its own switch (environment MSCONV_FUSED_CONV=0 turns it off;
// setInferenceConvFusion overrides, for comparisons).
bool inferenceConvCompiled();
bool inferenceConvEnabled();
void setInferenceConvFusion(bool on);

// The fused convolution, or an undefined tensor where it does not apply: a gradient is wanted,
// not float32 on the CPU, the input neither NCHW- nor channels-last-contiguous, or oneDNN offers
// only its reference implementation for the shape (decided once per shape, logged once under
// MSCONV_KERNELS_LOG=1). The output has the input's memory format.
at::Tensor inferenceConv(std::shared_ptr<InferenceConvState>& state, const at::Tensor& x,
                         const at::Tensor& weight, const at::Tensor& bias, const ConvGeometry& g,
                         const ConvEpilogue& e);

// For tests and benchmarks: how many fused convolutions this process has run.
int64_t inferenceConvRuns();

}  // namespace msconv::nn
