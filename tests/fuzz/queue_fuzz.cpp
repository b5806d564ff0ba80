// msconv::workspace::readQueue on an arbitrary lab-queue.json (the workbench's run queue).
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "msconv/error.h"
#include "msconv/workspace/workspace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  static const std::string path = msconv::fuzz::scratchPath("lab-queue.json");
  msconv::fuzz::writeFile(path, msconv::fuzz::bytesOf(data, size));
  try {
    for (const auto& run : msconv::workspace::readQueue(path)) (void)run.settings.size();
  } catch (const msconv::Error&) {
    // Not a run queue, reported as documented.
  }
  return 0;
}
