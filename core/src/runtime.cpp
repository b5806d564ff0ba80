#include "msconv/runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <dlfcn.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "msconv/error.h"

namespace msconv {

int defaultThreadCount() {
  const char* env = std::getenv("MSCONV_THREADS");
  if (env && *env) {  // set and not empty: a positive integer, as --threads wants
    int n = 0;
    try {
      size_t used = 0;
      n = std::stoi(env, &used);
      if (used != std::strlen(env)) n = 0;
    } catch (const std::exception&) {
    }
    if (n <= 0)
      throw Error(std::string("MSCONV_THREADS wants a positive integer, got '") + env + "'");
    return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

namespace {

// OpenBLAS runs its own thread pool beside LibTorch's. Every BLAS call LibTorch makes comes from
// a thread that is already one of the intra-op workers or the only caller, and on this kind of
// machine the two pools wake each other up and contend: measured on 2 cores, a single-threaded
// OpenBLAS makes the MSNet-50 training step 16 % faster (14.5 vs 12.5 samples/s) and the
// stage-4 msconv-official operator 1.85x faster. Looked up at run time: another BLAS has no such
// switch and needs none.
void singleThreadedBlas() {
  using SetThreads = void (*)(int);
  static const auto set =
      reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set) set(1);
}

}  // namespace

int setThreads(int n) {
  if (n <= 0) n = defaultThreadCount();
  at::set_num_threads(n);
  singleThreadedBlas();
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
