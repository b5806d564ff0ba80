// msconv::data::openRecordDataset over a .rec and its .idx from the input, laid out as for the
// recordio target (uint16 LE length of the .idx text, the .idx, the .rec): insightface's header
// record 0 and identity records, or labels from each image's own header. A dataset it opens must
// hand out labels within its classes, and every sample's image or a documented error.
#include <algorithm>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "msconv/data/dataset.h"
#include "msconv/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  const std::string rec = msconv::fuzz::writeRecordPair(data, size);
  if (rec.empty()) return 0;
  try {
    const auto set = msconv::data::openRecordDataset(rec);
    if (set->size() == 0 || set->numClasses() < 1)
      msconv::fuzz::violated("openRecordDataset opened an empty set");
    for (size_t i = 0; i < set->size(); ++i) {
      const int label = set->label(i);
      if (label < 0 || label >= set->numClasses())
        msconv::fuzz::violated("openRecordDataset: label " + std::to_string(label) + " of " +
                               set->describe(i) + " outside " + std::to_string(set->numClasses()) +
                               " classes");
      try {
        (void)set->encoded(i);
      } catch (const msconv::Error&) {
        // A record that does not read, reported as documented.
      }
    }
  } catch (const msconv::Error&) {
    // Missing index or malformed records, reported as documented.
  }
  return 0;
}
