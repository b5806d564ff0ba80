// When the hand-written kernels (the shared-slope PReLU, the fused MSConv stage, the grouped 3x3
// convolutions, the fused BatchNorm + PReLU pass) step aside for LibTorch's own operators:
// - while LibTorch's tracer records a graph (ONNX export), which sees only the operators it
//   dispatches and would record a kernel's output as an uninitialised tensor;
// - when the environment says MSCONV_KERNELS=libtorch (for comparison and for bug reports).
#pragma once

#include <ATen/TracerMode.h>

namespace msconv::nn {

inline bool tracingGraph() {
  return at::tracer::impl::is_dispatch_enabled();
}

// MSCONV_KERNELS=libtorch switches every hand-written kernel off (read once per process; any
// other value, or none, keeps them on). setLibtorchKernelsOnly() overrides it (tests, benches).
bool libtorchKernelsOnly();
void setLibtorchKernelsOnly(bool on);

// Whether a hand-written kernel may run now.
inline bool customKernels() {
  return !libtorchKernelsOnly() && !tracingGraph();
}

}  // namespace msconv::nn
