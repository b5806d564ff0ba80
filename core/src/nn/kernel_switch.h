// When the hand-written kernels (the shared-slope PReLU, the fused MSConv stage) step aside for
// LibTorch's own operators: while LibTorch's tracer records a graph (ONNX export), which sees
// only the operators it dispatches and would record a kernel's output as an uninitialised tensor.
#pragma once

#include <ATen/TracerMode.h>

namespace msconv::nn {

inline bool tracingGraph() {
  return at::tracer::impl::is_dispatch_enabled();
}

}  // namespace msconv::nn
