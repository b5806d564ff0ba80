#include "msconv/data/pairs.h"

#include <cstring>
#include <filesystem>

#include "msconv/atomic_file.h"
#include "msconv/data/decode.h"
#include "msconv/error.h"
#include "msconv/io/pickle.h"

namespace msconv::data {
namespace {

using io::PicklePtr;
using Kind = io::PickleValue::Kind;

bool isReconstruct(const PicklePtr& v) {
  return v->kind == Kind::kObject && (v->callable->isGlobal("numpy.core.multiarray._reconstruct") ||
                                      v->callable->isGlobal("numpy._core.multiarray._reconstruct"));
}

std::string dtypeOf(const PicklePtr& d) {
  // numpy.dtype('u1', False, True) arrives as an object whose first argument names the type.
  if (d && d->kind == Kind::kObject && d->callable->isGlobal("numpy.dtype") && d->args &&
      !d->args->items.empty())
    return d->args->items[0]->text;
  return "?";
}

// An ndarray's (dtype, raw bytes) from its BUILD state (version, shape, dtype, fortran, data).
bool ndarrayBytes(const PicklePtr& v, std::string* dtype, std::string* raw) {
  if (!isReconstruct(v) || !v->state || v->state->kind != Kind::kTuple ||
      v->state->items.size() < 5)
    return false;
  const auto& st = v->state->items;
  *dtype = dtypeOf(st[2]);
  if (st[4]->kind != Kind::kBytes) return false;
  *raw = st[4]->text;
  return true;
}

std::vector<PicklePtr> sequence(const PicklePtr& v) {
  if (v->kind == Kind::kList || v->kind == Kind::kTuple) return v->items;
  if (isReconstruct(v) && v->state && v->state->items.size() >= 5 &&
      v->state->items[4]->kind == Kind::kList)
    return v->state->items[4]->items;  // object arrays keep their elements in a list
  return {};
}

void putBytes(std::string& out, const std::string& b) {
  if (b.size() < 256) {
    out += 'C';
    out += static_cast<char>(b.size());
  } else {
    out += 'B';
    const uint32_t n = static_cast<uint32_t>(b.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
  }
  out += b;
}

}  // namespace

PairSet readPairsBin(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw Error(path + ": no such verification file");
  const std::string bytes = readFile(path);
  io::PickleOptions opts;
  opts.source = path;
  opts.allowed_globals = {"_codecs.encode",
                          "numpy.core.multiarray._reconstruct",
                          "numpy._core.multiarray._reconstruct",
                          "numpy.ndarray",
                          "numpy.dtype",
                          "numpy.core.multiarray.scalar",
                          "numpy._core.multiarray.scalar"};
  const PicklePtr root =
      io::unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), opts);
  if ((root->kind != Kind::kTuple && root->kind != Kind::kList) || root->items.size() != 2)
    throw Error(path + ": expected a pickled (bins, issame) pair, found a " + root->kindName());
  PairSet set;
  set.path = path;
  const auto bins = sequence(root->items[0]);
  if (bins.empty()) throw Error(path + ": bins is not a non-empty list of images");
  // Every image is copied out, and memo references let a small file name one image thousands of
  // times: allow an image used twice, not gigabytes from a megabyte.
  const uint64_t budget = 2 * uint64_t{bytes.size()} + (uint64_t{1} << 20);
  uint64_t total = 0;
  for (size_t i = 0; i < bins.size(); ++i) {
    const auto& b = bins[i];
    std::string dtype, raw;
    if (b->kind == Kind::kBytes || b->kind == Kind::kString) {
      set.images.push_back(b->text);
    } else if (ndarrayBytes(b, &dtype, &raw)) {
      if (dtype != "u1" && dtype != "i1")
        throw Error(path + ": image " + std::to_string(i) + " is a numpy array of " + dtype +
                    ", expected uint8 bytes");
      set.images.push_back(std::move(raw));
    } else {
      throw Error(path + ": image " + std::to_string(i) + " is a " + b->kindName() +
                  ", not encoded bytes");
    }
    total += set.images.back().size();
    if (total > budget)
      throw Error(path + ": images repeat (memo references): " + std::to_string(total) +
                  " bytes of images by image " + std::to_string(i) + " from a file of " +
                  std::to_string(bytes.size()) + " bytes");
  }
  const PicklePtr& same = root->items[1];
  std::string dtype, raw;
  if (ndarrayBytes(same, &dtype, &raw)) {
    if (dtype != "b1" && dtype != "u1" && dtype != "i1")
      throw Error(path + ": issame is a numpy array of " + dtype + ", expected bool");
    for (char c : raw) set.issame.push_back(c != 0);
  } else {
    const auto items = sequence(same);
    if (items.empty() && same->kind != Kind::kList)
      throw Error(path + ": issame is a " + same->kindName() + ", not a list of booleans");
    for (size_t i = 0; i < items.size(); ++i) {
      const auto& v = items[i];
      if (v->kind == Kind::kBool)
        set.issame.push_back(v->boolean);
      else if (v->kind == Kind::kInt)
        set.issame.push_back(v->integer != 0);
      else if (v->kind == Kind::kObject && v->args && v->args->items.size() >= 2 &&
               v->args->items[1]->kind == Kind::kBytes && !v->args->items[1]->text.empty())
        set.issame.push_back(v->args->items[1]->text[0] != 0);  // numpy.bool_ scalar
      else
        throw Error(path + ": issame[" + std::to_string(i) + "] is a " + v->kindName());
    }
  }
  if (set.images.size() != 2 * set.issame.size())
    throw Error(path + ": " + std::to_string(set.images.size()) + " images for " +
                std::to_string(set.issame.size()) + " pairs (expected twice as many images)");
  return set;
}

void writePairsBin(const std::string& path, const PairSet& set) {
  if (set.images.size() != 2 * set.issame.size())
    throw Error(path + ": " + std::to_string(set.images.size()) + " images for " +
                std::to_string(set.issame.size()) + " pairs");
  std::string out = "\x80\x04";
  out += ']';
  for (size_t i = 0; i < set.images.size(); i += 1000) {
    out += '(';
    for (size_t j = i; j < std::min(set.images.size(), i + 1000); ++j) putBytes(out, set.images[j]);
    out += 'e';
  }
  out += ']';
  for (size_t i = 0; i < set.issame.size(); i += 1000) {
    out += '(';
    for (size_t j = i; j < std::min(set.issame.size(), i + 1000); ++j)
      out += set.issame[j] ? '\x88' : '\x89';
    out += 'e';
  }
  out += '\x86';
  out += '.';
  writeFileAtomically(path, out);
}

}  // namespace msconv::data
