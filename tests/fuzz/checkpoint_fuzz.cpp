// msconv::model::openCheckpoint and describeModel, the reader every checkpoint goes through before
// a model is rebuilt (eval, embed, inspect, resume, the workbench), on two kinds of input:
//   byte 0 even: an archive written by LibTorch's OutputArchive whose entries come from the input,
//     so the fuzzing reaches what the project reads from a well-formed archive: the format marker,
//     the version, the arch, op and prelu texts (each entry a string, an int, a float or missing).
//     The rest of the input is split at '\n' into the five entries' values; an entry's first byte
//     picks its type ('i' int, 'f' float, 'x' missing, anything else a string).
//   byte 0 odd: the rest of the input is the file itself (LibTorch's zip and archive reader).
// Property: a description that is returned names an architecture and an operator whose canonical
// texts parse back to themselves.
#include <torch/torch.h>

#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "msconv/error.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/spec.h"

// The global operator new as the system's: a request it cannot meet throws std::bad_alloc.
// LibTorch's TorchScript reader sizes some allocations from an archive's contents before checking
// them: a 1.5 KB file (regressions/checkpoint/torchscript-asks-30gb.in) makes it ask for 30 GB.
// Outside the sanitizers that request throws, and openCheckpoint reports the file ("msconv embed":
// "not an MSConv Lab checkpoint (std::bad_alloc)", exit 1, 170 MB peak); AddressSanitizer's own
// operator new aborts instead. Here a request above 4.1 GiB, what run.sh's malloc limit allows
// this target, throws as the system would, so the fuzzing checks what the project does with it.
namespace {
constexpr std::size_t kNewLimit = std::size_t{4200} << 20;
void* allocate(std::size_t n) {
  if (n > kNewLimit) throw std::bad_alloc();
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
}  // namespace
void* operator new(std::size_t n) {
  return allocate(n);
}
void* operator new[](std::size_t n) {
  return allocate(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
// libFuzzer's own containers allocate through AddressSanitizer's operator new and free through
// this one: a mismatch by construction here, not a finding.
extern "C" const char* __asan_default_options() {
  return "alloc_dealloc_mismatch=0";
}

namespace {

void writeEntry(torch::serialize::OutputArchive& a, const std::string& key, const std::string& v) {
  if (v.empty()) {
    a.write(key, c10::IValue(std::string()));
    return;
  }
  const std::string rest = v.substr(1);
  switch (v[0]) {
    case 'x':
      return;
    case 'i': {
      uint64_t n = 0;  // wraps: any int64 is reachable
      for (char c : rest.substr(0, 18)) n = n * 31 + static_cast<unsigned char>(c);
      a.write(key, c10::IValue(static_cast<int64_t>(n)));
      return;
    }
    case 'f':
      a.write(key, c10::IValue(static_cast<double>(rest.size()) / 3.0));
      return;
    default:
      a.write(key, c10::IValue(v));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = msconv::fuzz::scratchPath("model.ckpt");
  std::string_view in = msconv::fuzz::bytesOf(data, size);
  if (in.empty()) return 0;
  const bool raw = static_cast<uint8_t>(in[0]) & 1;
  in.remove_prefix(1);
  if (raw) {
    msconv::fuzz::writeFile(path, in);
  } else {
    std::vector<std::string> fields;
    size_t start = 0;
    while (fields.size() < 5) {
      const size_t end = in.find('\n', start);
      fields.emplace_back(
          in.substr(start, end == std::string_view::npos ? in.size() - start : end - start));
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
    fields.resize(5);
    // An empty first field is the right marker: most inputs then get past it.
    if (fields[0].empty()) fields[0] = msconv::model::kCheckpointFormat;
    torch::serialize::OutputArchive archive;
    const char* keys[] = {"format", "version", "arch", "op", "prelu"};
    for (int i = 0; i < 5; ++i) writeEntry(archive, keys[i], fields[i]);
    try {
      archive.save_to(path);
    } catch (const c10::Error& e) {
      std::fprintf(stderr, "fuzz harness: cannot write %s: %s\n", path.c_str(), e.what());
      std::abort();
    }
  }
  try {
    torch::serialize::InputArchive archive;
    msconv::model::openCheckpoint(path, archive);
    const auto d = msconv::model::describeModel(archive, path);
    const std::string arch = d.arch.str(), op = d.op.str();
    if (msconv::nn::parseArch(arch).str() != arch)
      msconv::fuzz::violated("describeModel's architecture does not parse back: " + arch);
    if (msconv::nn::parseOpSpec(op).str() != op)
      msconv::fuzz::violated("describeModel's operator does not parse back: " + op);
  } catch (const msconv::Error&) {
    // Not a checkpoint, or not one this build can describe: reported as documented.
  }
  return 0;
}
