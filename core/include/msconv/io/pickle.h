// A restricted Python pickle reader. It executes nothing: it builds a tree of values, resolves only
// the globals the caller allows (anything else is an error naming the global), and leaves calls
// (REDUCE / NEWOBJ) as Object nodes for the caller to interpret. Protocols 0-5 without out-of-band
// buffers. Used for PyTorch checkpoints (data.pkl) and insightface's verification .bin files.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace msconv::io {

struct PickleValue;
using PicklePtr = std::shared_ptr<PickleValue>;

struct PickleValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,  // unicode text (UTF-8)
    kBytes,   // bytes, Python-2 str, bytearray
    kTuple,
    kList,
    kDict,
    kSet,
    kGlobal,        // text = "module.name"
    kObject,        // callable(*args), then BUILD(state); callable is a kGlobal
    kPersistentId,  // BINPERSID: args holds the persistent id
  };
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;                                      // kString, kBytes, kGlobal
  std::vector<PicklePtr> items;                          // kTuple, kList, kSet
  std::vector<std::pair<PicklePtr, PicklePtr>> entries;  // kDict
  PicklePtr callable, args, state;                       // kObject (state may be null)

  bool isGlobal(const std::string& qualified) const {
    return kind == Kind::kGlobal && text == qualified;
  }
  // Dict lookup by string key; null when absent or not a dict.
  PicklePtr get(const std::string& key) const;
  std::string kindName() const;
};

struct PickleOptions {
  std::set<std::string> allowed_globals;  // "module.name"
  std::string source;                     // file name for error messages
};

// Parses one pickle. Throws msconv::Error naming the source and byte offset for truncated or
// malformed data, unknown opcodes, and globals that are not allowed.
PicklePtr unpickle(const uint8_t* data, size_t size, const PickleOptions& options);

}  // namespace msconv::io
