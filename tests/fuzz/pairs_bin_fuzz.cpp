// msconv::data::readPairsBin on an arbitrary file: the insightface verification .bin (a pickle of
// (bins, issame) in every variant the reader accepts). A set it returns must hold two images per
// pair.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "msconv/data/pairs.h"
#include "msconv/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  static const std::string path = msconv::fuzz::scratchPath("pairs.bin");
  msconv::fuzz::writeFile(path, msconv::fuzz::bytesOf(data, size));
  try {
    const auto set = msconv::data::readPairsBin(path);
    if (set.images.empty() || set.images.size() != 2 * set.issame.size())
      msconv::fuzz::violated("readPairsBin returned " + std::to_string(set.images.size()) +
                             " images for " + std::to_string(set.issame.size()) + " pairs");
  } catch (const msconv::Error&) {
    // Malformed input, reported as documented.
  }
  return 0;
}
