// What the telemetry targets check on a telemetry file: read, then readMore on the same, unchanged
// file (nothing new may appear); a file read to its end is written again with the Writer and read
// back: the same header and the same records, bit for bit.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "msconv/error.h"
#include "msconv/telemetry/telemetry.h"

namespace msconv::fuzz {

using telemetry::Record;

template <typename T>
bool sameBits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

inline bool sameRecord(const Record& a, const Record& b) {
  if (a.step != b.step || !sameBits(a.wall, b.wall) || !sameBits(a.loss, b.loss) ||
      a.layers.size() != b.layers.size() || a.grad_norms.size() != b.grad_norms.size() ||
      a.gates.size() != b.gates.size())
    return false;
  for (size_t i = 0; i < a.layers.size(); ++i)
    if (!sameBits(a.layers[i].mean, b.layers[i].mean) ||
        !sameBits(a.layers[i].std, b.layers[i].std) ||
        !sameBits(a.layers[i].absmax, b.layers[i].absmax) ||
        !sameBits(a.layers[i].dead, b.layers[i].dead))
      return false;
  for (size_t i = 0; i < a.grad_norms.size(); ++i)
    if (!sameBits(a.grad_norms[i], b.grad_norms[i])) return false;
  for (size_t i = 0; i < a.gates.size(); ++i) {
    if (a.gates[i].size() != b.gates[i].size()) return false;
    for (size_t j = 0; j < a.gates[i].size(); ++j)
      if (!sameBits(a.gates[i][j], b.gates[i][j])) return false;
  }
  return true;
}

// `path` holds `size` bytes. Throws msconv::Error where the reader does (a bad header).
inline void checkTelemetryFile(const std::string& path, size_t size) {
  static const std::string copy = scratchPath("telemetry-copy.bin");
  auto r = telemetry::read(path);
  if (r.bytes > size) violated("telemetry::read consumed more than the file");
  const size_t before = r.records.size();
  if (telemetry::readMore(path, r) != 0 || r.records.size() != before)
    violated("telemetry::readMore found records in a file that did not grow");
  if (!r.problem.empty()) return;
  if (r.bytes != size) violated("telemetry::read stopped early without a problem");
  {
    telemetry::Writer w(copy, r.header);
    for (const auto& rec : r.records) w.write(rec);
  }
  const auto back = telemetry::read(copy);
  if (!back.problem.empty() || back.records.size() != r.records.size() ||
      back.header.layers != r.header.layers || back.header.gates != r.header.gates ||
      back.header.groups != r.header.groups || back.header.bins != r.header.bins ||
      back.header.every != r.header.every)
    violated("telemetry: a file written from what was read reads differently");
  for (size_t i = 0; i < r.records.size(); ++i)
    if (!sameRecord(r.records[i], back.records[i]))
      violated("telemetry: record " + std::to_string(i) + " changed through the Writer");
}

}  // namespace msconv::fuzz
