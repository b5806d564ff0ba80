// When the hand-written kernels (the shared-slope PReLU, the fused MSConv stage, the grouped 3x3
// convolutions, the fused BatchNorm + PReLU pass) step aside for LibTorch's own operators:
// - while LibTorch's tracer records a graph (ONNX export), which sees only the operators it
//   dispatches and would record a kernel's output as an uninitialised tensor;
// - when the environment says MSCONV_KERNELS=libtorch (for comparison and for bug reports).
#pragma once

#include <ATen/TracerMode.h>

#include <atomic>

namespace msconv::nn {

inline bool tracingGraph() {
  return at::tracer::impl::is_dispatch_enabled();
}

// MSCONV_KERNELS=libtorch switches every hand-written kernel off (read once per process; any
// other value, or none, keeps them on). setLibtorchKernelsOnly() overrides it (tests, benches).
bool libtorchKernelsOnly();
void setLibtorchKernelsOnly(bool on);

// MSCONV_KERNELS_LOG=1: the kernels print their per-shape decisions on stderr (read once).
bool kernelsLog();

// One kernel's own switch: on unless the environment variable `name` is "0" (read on first use),
// then as set() says. For comparisons of one kernel against its LibTorch form.
class EnvSwitch {
 public:
  explicit constexpr EnvSwitch(const char* name) : name_(name) {}
  bool on();
  void set(bool on) { state_ = on ? 1 : 0; }

 private:
  const char* name_;
  std::atomic<int> state_{-1};  // -1: not read yet
};

// Whether a hand-written kernel may run now.
inline bool customKernels() {
  return !libtorchKernelsOnly() && !tracingGraph();
}

}  // namespace msconv::nn
