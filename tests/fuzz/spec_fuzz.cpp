// msconv::nn::parseArch and parseOpSpec on arbitrary text (configs, the CLI and checkpoints hand
// them outside text). What they accept must survive the canonical spelling: parse(str()) equals
// the parsed value, and str() is stable.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "msconv/error.h"
#include "msconv/nn/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const msconv::nn::ArchSpec a = msconv::nn::parseArch(text);
    const std::string canonical = a.str();
    const msconv::nn::ArchSpec b = msconv::nn::parseArch(canonical);
    if (b != a || b.str() != canonical)
      msconv::fuzz::violated("parseArch: '" + text + "' prints as '" + canonical +
                             "', which parses differently");
    (void)msconv::nn::presetExpansion(a);
    (void)msconv::nn::defaultOpFor(a);
  } catch (const msconv::Error&) {
    // Not an architecture, reported as documented.
  }
  try {
    const msconv::nn::OpSpec a = msconv::nn::parseOpSpec(text);
    const std::string canonical = a.str();
    const msconv::nn::OpSpec b = msconv::nn::parseOpSpec(canonical);
    if (b != a || b.str() != canonical)
      msconv::fuzz::violated("parseOpSpec: '" + text + "' prints as '" + canonical +
                             "', which parses differently");
  } catch (const msconv::Error&) {
    // Not an operator, reported as documented.
  }
  return 0;
}
