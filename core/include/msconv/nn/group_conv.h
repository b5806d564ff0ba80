// Hand-written grouped 3x3 convolutions (forward, grad-input, grad-weight) for the MSConv and
// SKConv branch shapes: float32 CPU, padding = dilation (1..3), stride 1 or 2, as many input as
// output channels per group, K of them: 4 or 8 with C a multiple of the vector width (16 floats
// with AVX-512, 8 with AVX2; K = 8 is a multiple of the AVX2 width), or a multiple of the width up
// to 64; an optional bias (added as each output row is written: a folded BatchNorm's); NCHW or
// channels-last input (the output has the input's memory format).
// Internally channels-last, vectors along the output channels, one copy of the kernels per ISA
// (AVX-512, AVX2 + FMA) chosen at run time. Which of these and LibTorch's (oneDNN's) convolution
// runs, pass by pass, is decided per shape by timing both on the first call with that shape (see
// groupConvPlan).
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>

namespace msconv::nn {

// Whether the hand-written kernels handle this convolution (CPU float32, 4-d, 3x3 kernel,
// padding = dilation, supported groups / stride / dilation, this machine has AVX2 + FMA).
bool groupConvSupported(const at::Tensor& input, const at::Tensor& weight, bool has_bias,
                        at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                        at::IntArrayRef dilation, int64_t groups);

// Which implementation runs each pass of a grouped 3x3 convolution: ours (true) or LibTorch's
// (oneDNN's). Each is faster for some shapes; a plan takes the faster of each.
struct GroupConvPasses {
  bool forward = true, grad_input = true, grad_weight = true;
  bool any() const { return forward || grad_input || grad_weight; }
};

// The convolution as one autograd node, differentiable in input, weight and bias (no second
// derivative), each pass by the implementation `passes` names (ours by default). Only for shapes
// groupConvSupported() accepts and a bias of C float32 values or none (throws msconv::Error
// otherwise).
at::Tensor groupConv3x3(const at::Tensor& input, const at::Tensor& weight, int64_t stride,
                        int64_t dilation, int64_t groups, const at::Tensor& bias = {},
                        const GroupConvPasses& passes = {});

// The forward alone, where no gradient is wanted (the inference form): our kernel, with the bias
// and a PReLU of one shared slope ([1]; undefined: none) applied in its epilogue, as each output
// row is written. The output has the input's memory format. Throws msconv::Error where
// groupConv3x3 would, for another slope, and where a gradient is wanted.
at::Tensor groupConv3x3Inference(const at::Tensor& input, const at::Tensor& weight, int64_t stride,
                                 int64_t dilation, int64_t groups, const at::Tensor& bias = {},
                                 const at::Tensor& slope = {});

// How CountedConv2d runs this convolution: nullopt where LibTorch runs it whole (custom kernels
// off, unsupported, or LibTorch measured faster), else the plan for groupConv3x3. On the first
// call with a shape (batch, channels, map, groups, stride, dilation, the input's and the weight's
// memory format, a bias or none, and whether a gradient is wanted) both are timed: where no
// gradient is wanted (grad mode off, or neither input nor weight requiring one) the forward alone;
// in training each pass of each, the faster of each pass taken, and that mix kept only if it beats
// LibTorch's forward + backward end to end. The decision is cached per shape; MSCONV_KERNELS_LOG=1
// prints it (once per shape, with the times) on stderr.
std::optional<GroupConvPasses> groupConvPlan(const at::Tensor& input, const at::Tensor& weight,
                                             bool has_bias, at::IntArrayRef kernel,
                                             at::IntArrayRef stride, at::IntArrayRef padding,
                                             at::IntArrayRef dilation, int64_t groups);
// groupConvPlan(...).has_value(): any of ours runs.
bool groupConvChosen(const at::Tensor& input, const at::Tensor& weight, bool has_bias,
                     at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                     at::IntArrayRef dilation, int64_t groups);

// ---- For tests and benchmarks ------------------------------------------------------------------

// The ISA copy in use: "avx512", "avx2", or "none" (no kernels on this machine).
std::string groupConvIsa();
// Forces one ISA copy ("avx512", "avx2"; "" = the best this machine has). Throws msconv::Error
// for one the machine lacks. Not thread-safe against running convolutions.
void setGroupConvIsa(const std::string& isa);
// The number of shapes with a cached decision, and forgetting them all.
size_t groupConvDecisionCount();
void clearGroupConvDecisions();

}  // namespace msconv::nn
