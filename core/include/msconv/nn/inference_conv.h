// The inference form's convolutions with their epilogue fused: y = act(conv(x, w) + b + residual)
// as one oneDNN primitive (the library LibTorch itself runs convolutions with, called directly
// because LibTorch 1.13 does not expose oneDNN's post-ops): the bias, the residual add and the
// ReLU or shared-slope PReLU are applied while each output block is still in registers, and the
// weights are reordered into the primitive's layout once, not at every call. Used only where no
// gradient is wanted; anything it does not cover returns an undefined tensor and the caller runs
// the composed form.
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
// ReLU, or PReLU with one shared `slope` ([1]). (oneDNN 2.6's JIT convolutions decline its PReLU
// post-op, so a slope per channel is for the caller to apply to the fused result.)
struct ConvEpilogue {
  at::Tensor residual;
  // The caller no longer needs the residual: the output may be written over it (saves a copy),
  // which it is only where grad mode is off (no autograd graph can have saved it).
  bool residual_writable = false;
  at::Tensor slope;
  bool relu = false;
};

// Whether the fused path is on: customKernels(), and its own switch (environment
// MSCONV_FUSED_CONV=0 turns it off; setInferenceConvFusion overrides, for comparisons).
bool inferenceConvEnabled();
void setInferenceConvFusion(bool on);

// The fused convolution, or an undefined tensor where it does not apply: the fusion is off, a
// gradient is wanted, not float32 on the CPU, the input neither NCHW- nor channels-last-contiguous,
// a slope per channel, or oneDNN offers only its reference implementation for the shape (decided
// once per shape, logged under MSCONV_KERNELS_LOG=1). The output has the input's memory format.
// `state` is the module's cache (created here on first use; safe to share between threads); the
// weights it holds in oneDNN's layout follow in-place changes through the tensor's version
// counter. Throws msconv::Error if oneDNN fails while running a primitive it accepted.
at::Tensor inferenceConv(std::shared_ptr<InferenceConvState>& state, const at::Tensor& x,
                         const at::Tensor& weight, const at::Tensor& bias, const ConvGeometry& g,
                         const ConvEpilogue& e);

// For tests and benchmarks: how many fused convolutions this process has run.
int64_t inferenceConvRuns();

}  // namespace msconv::nn
