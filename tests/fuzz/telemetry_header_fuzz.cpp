// msconv::telemetry::read on a telemetry.bin assembled from the input: the header JSON (the input
// up to the first "\n--\n") behind the magic and its correct length, then the rest of the input as
// the records. Mutations of the header then reach the JSON reader instead of the length check.
// The checks are those of telemetry_check.h.
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "msconv/error.h"
#include "telemetry_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  static const std::string path = msconv::fuzz::scratchPath("telemetry.bin");
  const auto parts = msconv::fuzz::split(msconv::fuzz::bytesOf(data, size), "\n--\n", 2);
  std::string file = "MSCTLM01";
  const uint32_t n = static_cast<uint32_t>(parts[0].size());
  file.append(reinterpret_cast<const char*>(&n), 4);
  file.append(parts[0]);
  file.append(parts[1]);
  msconv::fuzz::writeFile(path, file);
  try {
    msconv::fuzz::checkTelemetryFile(path, file.size());
  } catch (const msconv::Error&) {
    // Bad header, reported as documented.
  }
  return 0;
}
