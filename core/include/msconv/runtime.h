// Process-wide runtime settings: LibTorch's thread counts and a description of the device.
#pragma once

#include <string>

namespace msconv {

// Intra-op threads to use when none is given: $MSCONV_THREADS when set (msconv::Error unless it
// is a positive integer), else every core.
int defaultThreadCount();

// Sets LibTorch's intra-op thread count for the calling thread's pool (n <= 0: the default above).
// Returns the count in force. Intra-op threads are per thread in LibTorch: call it in the thread
// that does the work.
int setThreads(int n);

// The intra-op thread count in force.
int threadCount();

// Keeps freed memory in the process instead of returning it to the system after every large
// tensor (glibc trims and unmaps eagerly; a training step then spends a sixth of its time in
// page faults re-touching the same activations). The resident size then stays at the high-water
// mark between steps. Called once at start.
void keepFreedMemory();

// True when LibTorch was built with CUDA and a device is present.
bool cudaAvailable();

// One line: "cpu, 2 threads" or "cuda (N devices), cpu 2 threads"; for status bars and logs.
std::string deviceSummary();

}  // namespace msconv
