// Shared by the benchmarks.
#pragma once

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace msconv::bench {

// The process's peak resident memory so far (VmHWM), in MiB; 0 where /proc is missing.
inline double peakRssMiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

// Runs `call` under LibTorch's profiler (CPU events, the events PyTorch's profiler reports for the
// peers) and adds each op's self time (its time less that of the ops it calls) to `self_us`, keyed
// by name; returns the call's wall time in microseconds. Our hand-written kernels appear under
// their own names (msconv::...).
template <typename Call>
double profileCall(const Call& call, std::map<std::string, double>& self_us) {
  namespace prof = torch::autograd::profiler;
  prof::enableProfilerLegacy(
      torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
  const auto t0 = std::chrono::steady_clock::now();
  call();
  const double wall_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  const auto lists = prof::disableProfilerLegacy();
  for (const auto& events : lists) {
    struct Open {
      const prof::LegacyEvent* e;
      double children_us;
    };
    std::vector<Open> stack;
    for (const auto& e : events) {
      if (e.kind() == prof::EventKind::PushRange) {
        stack.push_back({&e, 0.0});
      } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
        const Open open = stack.back();
        stack.pop_back();
        const double us = open.e->cpuElapsedUs(e);
        self_us[open.e->name()] += us - open.children_us;
        if (!stack.empty()) stack.back().children_us += us;
      }
    }
  }
  return wall_us;
}

// Runs `call` once per benchmark iteration under the profiler and sets the counters
// "<unit>_ms" (per call) and "self_ms/NAME" for each op with at least 0.5 % of a call's time.
template <typename State, typename Call>
void profileIterations(State& state, const std::string& unit, const Call& call) {
  std::map<std::string, double> self_us;
  double total_us = 0;
  int64_t calls = 0;
  for (auto _ : state) {
    total_us += profileCall(call, self_us);
    ++calls;
  }
  const double n = static_cast<double>(std::max<int64_t>(1, calls));
  const double call_us = total_us / n;
  state.counters[unit + "_ms"] = call_us / 1000.0;
  for (const auto& [name, us] : self_us)
    if (us / n >= 0.005 * call_us) state.counters["self_ms/" + name] = us / n / 1000.0;
}

}  // namespace msconv::bench
