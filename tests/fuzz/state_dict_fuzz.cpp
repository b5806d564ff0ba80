// msconv::io::readTorchFile and readTorchCheckpoint on a torch.save() archive whose contents come
// from the input. The zip container is LibTorch's (and checks CRCs), so the harness builds a valid
// archive with PyTorchStreamWriter and fuzzes what the project reads from it: data.pkl through the
// restricted unpickler and the tensor rebuilding (storage types, sizes, strides, offsets).
// Input: byte 0 % 4 = number of storage records; each is a little-endian uint16 length and that
// many bytes, stored as data/0, data/1, ...; the rest of the input is data.pkl.
#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "msconv/error.h"
#include "msconv/io/state_dict.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = msconv::fuzz::scratchPath("model.pt");
  std::string_view in = msconv::fuzz::bytesOf(data, size);
  if (in.empty()) return 0;
  const int storages = static_cast<uint8_t>(in[0]) % 4;
  in.remove_prefix(1);
  {
    caffe2::serialize::PyTorchStreamWriter writer(path);
    for (int i = 0; i < storages; ++i) {
      size_t n = 0;
      if (in.size() >= 2) {
        n = static_cast<uint8_t>(in[0]) | (size_t{static_cast<uint8_t>(in[1])} << 8);
        in.remove_prefix(2);
      }
      n = std::min(n, in.size());
      writer.writeRecord("data/" + std::to_string(i), in.data(), n);
      in.remove_prefix(n);
    }
    writer.writeRecord("data.pkl", in.data(), in.size());
    writer.writeEndOfFile();
  }
  try {
    for (const auto& [name, tensor] : msconv::io::readTorchFile(path)) (void)tensor.numel();
  } catch (const msconv::Error&) {
    // Not a state_dict, reported as documented.
  }
  try {
    const auto ck = msconv::io::readTorchCheckpoint(path);
    if (ck.head.defined() && ck.head.dim() != 2)
      msconv::fuzz::violated("readTorchCheckpoint returned a head that is not a matrix");
  } catch (const msconv::Error&) {
    // Not a checkpoint, reported as documented.
  }
  return 0;
}
