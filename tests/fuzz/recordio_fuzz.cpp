// msconv::data::RecordReader over a .rec and its .idx, both from the input: the first two bytes
// (little-endian) give the length of the .idx text that follows them, the rest is the .rec. Every
// key of the index is read whole (read) and by its header alone (readHeader): readHeader succeeds
// wherever read does, and the two agree.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "msconv/data/recordio.h"
#include "msconv/error.h"

namespace {

bool sameHeader(const msconv::data::IRHeader& a, const msconv::data::IRHeader& b) {
  return a.flag == b.flag && std::memcmp(&a.label, &b.label, sizeof a.label) == 0 && a.id == b.id &&
         a.id2 == b.id2 && a.labels.size() == b.labels.size() &&
         (a.labels.empty() ||
          std::memcmp(a.labels.data(), b.labels.data(), 4 * a.labels.size()) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  const std::string rec = msconv::fuzz::writeRecordPair(data, size);
  if (rec.empty()) return 0;
  try {
    const msconv::data::RecordReader reader(rec);  // the .idx beside it, by name
    if (reader.keys().size() != reader.size())
      msconv::fuzz::violated("RecordReader: keys() and size() disagree");
    for (const uint64_t key : reader.keys()) {
      if (!reader.hasKey(key)) msconv::fuzz::violated("RecordReader: a listed key is missing");
      bool have_record = false, have_header = false;
      msconv::data::Record record;
      msconv::data::IRHeader header;
      try {
        record = reader.read(key);
        have_record = true;
      } catch (const msconv::Error&) {
      }
      try {
        header = reader.readHeader(key);
        have_header = true;
      } catch (const msconv::Error&) {
      }
      if (have_record && !have_header)
        msconv::fuzz::violated("RecordReader: key " + std::to_string(key) +
                               " reads whole but its header alone does not");
      if (have_record && have_header && !sameHeader(record.header, header))
        msconv::fuzz::violated("RecordReader: readHeader and read disagree at key " +
                               std::to_string(key));
    }
  } catch (const msconv::Error&) {
    // Missing or malformed index, reported as documented.
  }
  return 0;
}
