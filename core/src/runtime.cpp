#include "msconv/runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <malloc.h>

#include <cstdlib>
#include <string>
#include <thread>

namespace msconv {

int defaultThreadCount() {
  if (const char* env = std::getenv("MSCONV_THREADS")) {
    try {
      int n = std::stoi(env);
      if (n > 0) return n;
    } catch (const std::exception&) {
    }
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

int setThreads(int n) {
  if (n <= 0) n = defaultThreadCount();
  at::set_num_threads(n);
  return at::get_num_threads();
}

int threadCount() {
  return at::get_num_threads();
}

void keepFreedMemory() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);  // large tensors from the heap, not fresh mappings
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // and not trimmed back after each step
}

bool cudaAvailable() {
  return torch::cuda::is_available();
}

std::string deviceSummary() {
  std::string cpu = "cpu " + std::to_string(threadCount()) + " threads";
  if (cudaAvailable())
    return "cuda (" + std::to_string(torch::cuda::device_count()) + " devices), " + cpu;
  return cpu;
}

}  // namespace msconv
