// msconv::config::Config::load with arbitrary "key=value" overrides (one per input line, as the
// CLI's --set and the workbench's queue give them), then the checks of config_check.h on what it
// accepts.
#include <cstdint>
#include <string>
#include <vector>

#include "config_check.h"
#include "fuzz_util.h"
#include "msconv/config/config.h"
#include "msconv/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  std::vector<std::string> sets;
  std::string_view in = msconv::fuzz::bytesOf(data, size);
  while (!in.empty()) {
    const size_t nl = in.find('\n');
    sets.emplace_back(in.substr(0, nl));
    if (nl == std::string_view::npos) break;
    in.remove_prefix(nl + 1);
  }
  try {
    msconv::fuzz::checkConfig(msconv::config::Config::load("", sets));
  } catch (const msconv::Error&) {
    // Malformed or invalid setting, reported as documented.
  }
  return 0;
}
