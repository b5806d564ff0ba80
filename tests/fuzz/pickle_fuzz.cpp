// msconv::io::unpickle on arbitrary bytes, with every global that a reader of the project allows
// (verification .bin files and PyTorch state_dicts), then a walk of the whole value tree that
// checks the shape the readers rely on: no null child, objects with a global callable and a
// tuple-or-other argument node, persistent ids with their argument.
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "fuzz_util.h"
#include "msconv/error.h"
#include "msconv/io/pickle.h"

using msconv::io::PicklePtr;
using msconv::io::PickleValue;
using Kind = PickleValue::Kind;

namespace {

const msconv::io::PickleOptions& options() {
  static const msconv::io::PickleOptions o = [] {
    msconv::io::PickleOptions p;
    p.source = "fuzz.pkl";
    // data/pairs.cpp
    p.allowed_globals = {"_codecs.encode",
                         "numpy.core.multiarray._reconstruct",
                         "numpy._core.multiarray._reconstruct",
                         "numpy.ndarray",
                         "numpy.dtype",
                         "numpy.core.multiarray.scalar",
                         "numpy._core.multiarray.scalar"};
    // io/state_dict.cpp
    p.allowed_globals.insert({"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                              "torch._utils._rebuild_parameter", "builtins.dict"});
    for (const char* storage :
         {"Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool"})
      p.allowed_globals.insert(std::string("torch.") + storage + "Storage");
    return p;
  }();
  return o;
}

void need(bool ok, const std::string& what) {
  if (!ok) msconv::fuzz::violated("unpickle: " + what);
}

// Visits every node once (the memo makes a graph of the tree: shared and cyclic references).
void walk(const PicklePtr& root) {
  std::unordered_set<const PickleValue*> seen;
  std::vector<const PickleValue*> todo{root.get()};
  need(root != nullptr, "null root");
  auto push = [&](const PicklePtr& p, const char* where) {
    need(p != nullptr, std::string("null ") + where);
    todo.push_back(p.get());
  };
  while (!todo.empty()) {
    const PickleValue* v = todo.back();
    todo.pop_back();
    if (!seen.insert(v).second) continue;
    (void)v->kindName();
    for (const auto& x : v->items) push(x, "item");
    for (const auto& [k, x] : v->entries) {
      push(k, "dict key");
      push(x, "dict value");
    }
    if (v->kind == Kind::kObject) {
      need(v->callable && v->callable->kind == Kind::kGlobal, "object without a global callable");
      need(v->args != nullptr, "object without arguments");
    }
    if (v->kind == Kind::kPersistentId) need(v->args != nullptr, "persistent id without argument");
    if (v->kind == Kind::kDict) (void)v->get("state_dict");
    if (v->callable) push(v->callable, "callable");
    if (v->args) push(v->args, "arguments");
    if (v->state) push(v->state, "state");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  try {
    walk(msconv::io::unpickle(data, size, options()));
  } catch (const msconv::Error&) {
    // Malformed input, reported as documented.
  }
  return 0;
}
