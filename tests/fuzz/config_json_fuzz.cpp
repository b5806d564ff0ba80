// msconv::config::Config::load on an arbitrary configuration file (JSON, nested objects), then the
// checks of config_check.h on what it accepts.
#include <cstdint>
#include <string>

#include "config_check.h"
#include "fuzz_util.h"
#include "msconv/config/config.h"
#include "msconv/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  static const std::string path = msconv::fuzz::scratchPath("config.json");
  msconv::fuzz::writeFile(path, msconv::fuzz::bytesOf(data, size));
  try {
    msconv::fuzz::checkConfig(msconv::config::Config::load(path, {}));
  } catch (const msconv::Error&) {
    // Malformed or invalid configuration, reported as documented.
  }
  return 0;
}
