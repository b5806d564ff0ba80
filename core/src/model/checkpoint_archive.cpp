// The reading half of MSConv Lab's checkpoint (checkpoint.h): opening an archive and the model
// description it holds. Apart from the rest (which rebuilds models) so that the fuzz target
// tests/fuzz/checkpoint_fuzz.cpp builds it with the spec parser alone.
#include <torch/torch.h>

#include <exception>
#include <filesystem>
#include <string>

#include "msconv/error.h"
#include "msconv/model/checkpoint.h"
#include "util/torch_error.h"

namespace msconv::model {
namespace {

using util::firstLine;

std::string readString(torch::serialize::InputArchive& a, const std::string& key,
                       const std::string& path) {
  c10::IValue v;
  if (!a.try_read(key, v) || !v.isString())
    throw Error(path + ": checkpoint has no '" + key + "' entry");
  return v.toStringRef();
}

}  // namespace

void openCheckpoint(const std::string& path, torch::serialize::InputArchive& archive) {
  if (!std::filesystem::exists(path)) throw Error(path + ": no such checkpoint file");
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw Error(path + ": not an MSConv Lab checkpoint (" + firstLine(e) +
                "); a PyTorch state_dict must first go through 'msconv import'");
  } catch (const std::exception& e) {
    // TorchScript's reader throws std::runtime_error for an archive whose code entries do not
    // parse (found by tests/fuzz/checkpoint_fuzz.cpp); its text quotes the file's bytes.
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    for (char& c : what)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    throw Error(path + ": not an MSConv Lab checkpoint (" + what + ")");
  }
  c10::IValue format;
  if (!archive.try_read("format", format) || !format.isString() ||
      format.toStringRef() != kCheckpointFormat)
    throw Error(path + ": not an MSConv Lab checkpoint (no format marker)");
  c10::IValue version;
  if (archive.try_read("version", version) && version.isInt() &&
      version.toInt() > kCheckpointVersion)
    throw Error(path + ": checkpoint version " + std::to_string(version.toInt()) +
                " is newer than this build understands (" + std::to_string(kCheckpointVersion) +
                ")");
}

ModelDescription describeModel(torch::serialize::InputArchive& archive, const std::string& path) {
  ModelDescription d;
  try {
    d.arch = nn::parseArch(readString(archive, "arch", path));
    d.op = nn::parseOpSpec(readString(archive, "op", path));
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  c10::IValue prelu;
  if (!archive.try_read("prelu", prelu)) {
    d.arch.prelu = nn::PReluSlopes::kPerChannel;  // every frame, before version 2
  } else if (prelu.isString() && prelu.toStringRef() == "shared") {
    d.arch.prelu = nn::PReluSlopes::kShared;
  } else if (prelu.isString() && prelu.toStringRef() == "channel") {
    d.arch.prelu = nn::PReluSlopes::kPerChannel;
  } else {
    throw Error(path + ": checkpoint entry 'prelu' is neither 'shared' nor 'channel'");
  }
  return d;
}

}  // namespace msconv::model
