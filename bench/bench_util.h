// Shared by the benchmarks.
#pragma once

#include <fstream>
#include <string>

namespace msconv::bench {

// The process's peak resident memory so far (VmHWM), in MiB; 0 where /proc is missing.
inline double peakRssMiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

}  // namespace msconv::bench
