// msconv::study::parseStudy and expand on an arbitrary study file: every cell's configuration is
// validated (config and the architecture / operator grammar), and a grid too large is refused.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "msconv/error.h"
#include "msconv/study/study.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  try {
    const auto s =
        msconv::study::parseStudy(std::string(msconv::fuzz::bytesOf(data, size)), "study.json");
    for (const auto& c : msconv::study::expand(s))
      for (uint64_t seed : s.seeds) (void)msconv::study::runName(s, c, seed).size();
    (void)msconv::study::studyJson(s).size();
  } catch (const msconv::Error&) {
    // Not a study, or a value the trainer refuses: reported as documented.
  }
  return 0;
}
