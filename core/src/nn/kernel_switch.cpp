#include "msconv/nn/kernel_switch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace msconv::nn {
namespace {

bool fromEnvironment() {
  const char* v = std::getenv("MSCONV_KERNELS");
  return v && std::strcmp(v, "libtorch") == 0;
}

std::atomic<bool>& libtorchOnly() {
  static std::atomic<bool> on{fromEnvironment()};
  return on;
}

}  // namespace

bool libtorchKernelsOnly() {
  return libtorchOnly().load(std::memory_order_relaxed);
}

void setLibtorchKernelsOnly(bool on) {
  libtorchOnly().store(on, std::memory_order_relaxed);
}

bool kernelsLog() {
  static const bool on = [] {
    const char* v = std::getenv("MSCONV_KERNELS_LOG");
    return v && std::strcmp(v, "1") == 0;
  }();
  return on;
}

bool EnvSwitch::on() {
  int v = state_.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* env = std::getenv(name_);
    v = env && std::strcmp(env, "0") == 0 ? 0 : 1;
    state_.store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

}  // namespace msconv::nn
