// msconv::telemetry::read on an arbitrary telemetry.bin (magic, JSON header, CRC-checked records),
// with the checks of telemetry_check.h.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "msconv/error.h"
#include "telemetry_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  static const std::string path = msconv::fuzz::scratchPath("telemetry.bin");
  msconv::fuzz::writeFile(path, msconv::fuzz::bytesOf(data, size));
  try {
    msconv::fuzz::checkTelemetryFile(path, size);
  } catch (const msconv::Error&) {
    // Missing file or bad header, reported as documented.
  }
  return 0;
}
