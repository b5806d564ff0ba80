// Hand-written grouped 3x3 convolutions (forward, grad-input, grad-weight) for the MSConv and
// SKConv branch shapes: float32 CPU, padding = dilation (1..3), stride 1 or 2, as many input as
// output channels per group, K of them: 4 or 8 with C a multiple of the vector width (16 floats
// with AVX-512, 8 with AVX2; K = 8 is a multiple of the AVX2 width), or a multiple of the width up
// to 64; no bias; NCHW or channels-last input (the output has the input's memory format).
// Internally channels-last, vectors along the output channels, one copy of the kernels per ISA
// (AVX-512, AVX2 + FMA) chosen at run time. Which of these and LibTorch's (oneDNN's) convolution
// runs is decided per shape by timing both on the first call with that shape.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace msconv::nn {

// Whether the hand-written kernels handle this convolution (CPU float32, 4-d, 3x3 kernel,
// padding = dilation, supported groups / stride / dilation, this machine has AVX2 + FMA).
bool groupConvSupported(const at::Tensor& input, const at::Tensor& weight, bool has_bias,
                        at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                        at::IntArrayRef dilation, int64_t groups);

// The hand-written convolution, differentiable in input and weight (no second derivative). Only
// for shapes groupConvSupported() accepts (throws msconv::Error otherwise).
at::Tensor groupConv3x3(const at::Tensor& input, const at::Tensor& weight, int64_t stride,
                        int64_t dilation, int64_t groups);

// Whether CountedConv2d runs groupConv3x3 for this convolution: customKernels() allows it, it is
// supported, and on the first call with this shape (batch, channels, map, groups, stride,
// dilation, memory format) forward + backward of both were timed and ours was the faster. The
// decision is cached per shape; MSCONV_KERNELS_LOG=1 prints it (once per shape) on stderr.
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
