// msconv::data::unpackRecord on an arbitrary record payload (IRHeader, label array, image). What
// it accepts must pack back to the same bytes (packRecord is the writer's half).
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "msconv/data/recordio.h"
#include "msconv/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  const std::string payload(reinterpret_cast<const char*>(data), size);
  try {
    const msconv::data::Record r = msconv::data::unpackRecord(payload, "fuzz record");
    if (r.header.labels.size() != r.header.flag)
      msconv::fuzz::violated("unpackRecord: flag " + std::to_string(r.header.flag) + " but " +
                             std::to_string(r.header.labels.size()) + " labels");
    if (msconv::data::packRecord(r.header, r.image) != payload)
      msconv::fuzz::violated("packRecord(unpackRecord(payload)) differs from the payload");
  } catch (const msconv::Error&) {
    // Short or inconsistent record, reported as documented.
  }
  return 0;
}
