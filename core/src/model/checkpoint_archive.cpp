// The reading half of MSConv Lab's checkpoint (checkpoint.h): opening an archive and the model
// description it holds. Apart from the rest (which rebuilds models) so that the fuzz target
// tests/fuzz/checkpoint_fuzz.cpp builds it with the spec parser alone.
#include <torch/torch.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

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

// Where the archive's central directory names a TorchScript debug record ("....debug_pkl"): the
// offset of each such name's last byte. Empty where the zip's end records cannot be read or use
// the zip64 form; the reader then sees the file as it is.
std::vector<uint64_t> debugRecordNames(std::ifstream& f, uint64_t size) {
  std::vector<uint64_t> out;
  const uint64_t tail = std::min<uint64_t>(size, 22 + 65535);  // end record + longest comment
  std::string buf(static_cast<size_t>(tail), '\0');
  f.seekg(static_cast<std::streamoff>(size - tail));
  if (!f.read(buf.data(), static_cast<std::streamsize>(tail))) return out;
  const auto u16 = [](const std::string& b, size_t i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(b[i])) |
           static_cast<uint32_t>(static_cast<unsigned char>(b[i + 1])) << 8;
  };
  const auto u32 = [&](const std::string& b, size_t i) { return u16(b, i) | u16(b, i + 2) << 16; };
  size_t eocd = std::string::npos;
  for (size_t i = tail >= 22 ? tail - 22 : 0; tail >= 22; --i) {
    if (u32(buf, i) == 0x06054b50) {
      eocd = i;
      break;
    }
    if (i == 0) break;
  }
  if (eocd == std::string::npos) return out;
  const uint64_t entries = u16(buf, eocd + 10), cd_size = u32(buf, eocd + 12),
                 cd_offset = u32(buf, eocd + 16);
  if (entries == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff ||
      cd_offset + cd_size > size)
    return out;
  std::string cd(static_cast<size_t>(cd_size), '\0');
  f.seekg(static_cast<std::streamoff>(cd_offset));
  if (!f.read(cd.data(), static_cast<std::streamsize>(cd_size))) return out;
  static const std::string suffix = ".debug_pkl";
  size_t i = 0;
  for (uint64_t e = 0; e < entries && i + 46 <= cd.size() && u32(cd, i) == 0x02014b50; ++e) {
    const size_t name = u16(cd, i + 28), extra = u16(cd, i + 30), comment = u16(cd, i + 32);
    if (i + 46 + name > cd.size()) break;
    const std::string_view n(cd.data() + i + 46, name);
    if (n.size() >= suffix.size() && n.substr(n.size() - suffix.size()) == suffix)
      out.push_back(cd_offset + i + 46 + name - 1);
    i += 46 + name + extra + comment;
  }
  return out;
}

// Reads the archive as TorchScript's loader would, with its debug records hidden (their names
// changed by one byte as they are read). Those records only map generated code back to its source
// for error messages, and LibTorch 1.13 reads them with no checks: a corrupt one next to code
// that does not parse crashed the loader (a segmentation fault, found by
// tests/fuzz/checkpoint_fuzz.cpp; regressions/checkpoint/corrupt-debug-record.in).
void loadWithoutDebugRecords(const std::string& path, torch::serialize::InputArchive& archive) {
  auto f = std::make_shared<std::ifstream>(path, std::ios::binary);
  if (!*f) throw Error(path + ": cannot open the checkpoint file");
  const uint64_t size = std::filesystem::file_size(path);
  const auto hidden = std::make_shared<std::vector<uint64_t>>(debugRecordNames(*f, size));
  f->clear();
  auto mutex = std::make_shared<std::mutex>();
  archive.load_from(
      [f, hidden, mutex, size](uint64_t pos, void* buf, size_t n) -> size_t {
        if (pos >= size) return 0;
        n = static_cast<size_t>(std::min<uint64_t>(n, size - pos));
        std::lock_guard<std::mutex> lock(*mutex);
        f->clear();
        f->seekg(static_cast<std::streamoff>(pos));
        f->read(static_cast<char*>(buf), static_cast<std::streamsize>(n));
        const auto got = static_cast<size_t>(f->gcount());
        for (const uint64_t at : *hidden)
          if (at >= pos && at < pos + got) static_cast<char*>(buf)[at - pos] = '_';
        return got;
      },
      [size]() -> size_t { return static_cast<size_t>(size); });
}

}  // namespace

void openCheckpoint(const std::string& path, torch::serialize::InputArchive& archive) {
  if (!std::filesystem::exists(path)) throw Error(path + ": no such checkpoint file");
  try {
    loadWithoutDebugRecords(path, archive);
  } catch (const Error&) {
    throw;
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
