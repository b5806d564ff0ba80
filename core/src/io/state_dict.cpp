#include "msconv/io/state_dict.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "msconv/error.h"
#include "msconv/io/pickle.h"
#include "util/torch_error.h"

namespace msconv::io {
namespace {

using Kind = PickleValue::Kind;

struct StorageType {
  const char* name;
  torch::Dtype dtype;
};
const StorageType kStorages[] = {
    {"torch.FloatStorage", torch::kFloat32}, {"torch.DoubleStorage", torch::kFloat64},
    {"torch.HalfStorage", torch::kFloat16},  {"torch.BFloat16Storage", torch::kBFloat16},
    {"torch.LongStorage", torch::kInt64},    {"torch.IntStorage", torch::kInt32},
    {"torch.ShortStorage", torch::kInt16},   {"torch.CharStorage", torch::kInt8},
    {"torch.ByteStorage", torch::kUInt8},    {"torch.BoolStorage", torch::kBool},
};

std::set<std::string> allowedGlobals() {
  std::set<std::string> g = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                             "torch._utils._rebuild_parameter", "builtins.dict"};
  for (const auto& s : kStorages) g.insert(s.name);
  return g;
}

std::vector<int64_t> intList(const PicklePtr& v, const std::string& what, const std::string& src) {
  if (!v || v->kind != Kind::kTuple) throw Error(src + ": tensor " + what + " is not a tuple");
  std::vector<int64_t> out;
  for (const auto& x : v->items) {
    if (x->kind != Kind::kInt) throw Error(src + ": tensor " + what + " holds a non-integer");
    out.push_back(x->integer);
  }
  return out;
}

class Rebuilder {
 public:
  Rebuilder(caffe2::serialize::PyTorchStreamReader& reader, std::string src)
      : reader_(reader), src_(std::move(src)) {}

  torch::Tensor tensor(const PicklePtr& v, const std::string& name) {
    if (v->kind != Kind::kObject)
      throw Error(src_ + ": '" + name + "' is a " + v->kindName() + ", not a tensor");
    const auto& a = v->args->items;
    if (v->callable->isGlobal("torch._utils._rebuild_parameter")) {
      if (a.empty()) throw Error(src_ + ": '" + name + "': empty parameter");
      return tensor(a[0], name);
    }
    if (!v->callable->isGlobal("torch._utils._rebuild_tensor_v2") || a.size() < 4)
      throw Error(src_ + ": '" + name + "' is an " + v->kindName() + ", not a tensor");
    const torch::Tensor storage = this->storage(a[0], name);
    if (a[1]->kind != Kind::kInt) throw Error(src_ + ": '" + name + "': bad storage offset");
    const int64_t offset = a[1]->integer;
    const auto size = intList(a[2], "size", src_ + " '" + name + "'");
    const auto stride = intList(a[3], "stride", src_ + " '" + name + "'");
    if (size.size() != stride.size())
      throw Error(src_ + ": '" + name + "': size and stride differ in length");
    // In checked arithmetic: sizes and strides are the file's, and a product that overflows
    // would slip past the bounds check. The tensor may not hold more elements than its storage
    // (an expanded view, stride 0, would otherwise turn a few bytes into gigabytes at clone()).
    const auto past = [&] {
      return Error(src_ + ": '" + name + "' reaches past its storage (" +
                   std::to_string(storage.numel()) + " elements)");
    };
    int64_t last = offset, numel = 1;
    for (size_t i = 0; i < size.size(); ++i) {
      if (size[i] < 0 || stride[i] < 0) throw Error(src_ + ": '" + name + "': negative size");
      int64_t reach = 0;
      if (size[i] > 0 && (__builtin_mul_overflow(size[i] - 1, stride[i], &reach) ||
                          __builtin_add_overflow(last, reach, &last)))
        throw past();
      if (__builtin_mul_overflow(numel, size[i], &numel)) throw past();
    }
    if (numel > 0 && (offset < 0 || last >= storage.numel())) throw past();
    if (numel > storage.numel())
      throw Error(src_ + ": '" + name + "' views " + std::to_string(numel) +
                  " elements of a storage of " + std::to_string(storage.numel()) +
                  " (an expanded tensor; save it contiguous)");
    // Each reference is cloned, and memo references let a small file name one tensor thousands
    // of times: allow tied weights, not that.
    built_ += static_cast<uint64_t>(std::max<int64_t>(numel, 0)) * storage.element_size();
    if (built_ > 2 * stored_ + (uint64_t{1} << 20))
      throw Error(src_ + ": '" + name + "': the tensors repeat their storages (" +
                  std::to_string(built_) + " bytes of tensors from " + std::to_string(stored_) +
                  " bytes of storage)");
    return storage.as_strided(size, stride, offset).clone();
  }

 private:
  torch::Tensor storage(const PicklePtr& pid, const std::string& name) {
    if (pid->kind != Kind::kPersistentId || !pid->args || pid->args->kind != Kind::kTuple ||
        pid->args->items.size() < 5)
      throw Error(src_ + ": '" + name + "': storage reference is malformed");
    const auto& t = pid->args->items;
    const auto& key = t[2]->text;
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    const StorageType* type = nullptr;
    for (const auto& s : kStorages)
      if (t[1]->isGlobal(s.name)) type = &s;
    if (!type) throw Error(src_ + ": '" + name + "': unknown storage type " + t[1]->kindName());
    if (t[4]->kind != Kind::kInt || t[4]->integer < 0)
      throw Error(src_ + ": '" + name + "': bad storage size");
    const int64_t numel = t[4]->integer;
    const std::string record = "data/" + key;
    if (!reader_.hasRecord(record))
      throw Error(src_ + ": storage record '" + record + "' for '" + name + "' is missing");
    auto [data, bytes] = reader_.getRecord(record);
    // The record's size bounds the allocation, not the size the pickle claims.
    const size_t element = c10::elementSize(type->dtype);
    if (static_cast<uint64_t>(numel) > bytes / element)
      throw Error(src_ + ": storage record '" + record + "' holds " + std::to_string(bytes) +
                  " bytes, " + std::to_string(numel) + " x " + std::to_string(element) + " needed");
    torch::Tensor out = torch::empty({numel}, torch::TensorOptions().dtype(type->dtype));
    const size_t want = static_cast<size_t>(numel) * element;
    std::memcpy(out.data_ptr(), data.get(), want);
    cache_[key] = out;
    stored_ += want;
    return out;
  }

  caffe2::serialize::PyTorchStreamReader& reader_;
  std::string src_;
  std::map<std::string, torch::Tensor> cache_;
  uint64_t built_ = 0, stored_ = 0;  // bytes of the tensors built, of the storages read
};

void flatten(const PicklePtr& dict, const std::string& prefix, Rebuilder& rb, NamedTensors& out,
             const std::string& src) {
  for (const auto& [k, v] : dict->entries) {
    if (k->kind != Kind::kString && k->kind != Kind::kBytes)
      throw Error(src + ": a key of kind " + k->kindName() + " (expected names)");
    const std::string name = prefix + k->text;
    if (v->kind == Kind::kDict)
      flatten(v, name + ".", rb, out, src);
    else
      out.emplace_back(name, rb.tensor(v, name));
  }
}

using util::firstLine;

std::string shapeStr(c10::IntArrayRef s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

std::string listFew(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < 4; ++i) out += (i ? ", " : "") + v[i];
  if (v.size() > 4) out += ", ... (" + std::to_string(v.size()) + " in all)";
  return out;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

namespace {

// Opens a torch.save() zip archive and unpickles its data.pkl (restricted), handing the reader and
// the root value to `use`; the archive's own errors become msconv::Error naming the file.
template <typename Fn>
auto withPickle(const std::string& path, Fn use) {
  if (!std::filesystem::is_regular_file(path)) throw Error(path + ": no such file");
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    throw Error(path + ": not a PyTorch zip archive (torch.save since 1.6): " + firstLine(e));
  }
  try {
    if (!reader->hasRecord("data.pkl"))
      throw Error(path +
                  ": PyTorch archive without data.pkl (a TorchScript module? use a state_dict)");
    auto [data, size] = reader->getRecord("data.pkl");
    PickleOptions opts;
    opts.allowed_globals = allowedGlobals();
    opts.source = path + ":data.pkl";
    PicklePtr root = unpickle(static_cast<const uint8_t*>(data.get()), size, opts);
    if (root->kind != Kind::kDict)
      throw Error(path + ": holds a " + root->kindName() + ", not a dict of tensors (state_dict)");
    return use(*reader, root);
  } catch (const c10::Error& e) {
    // The zip reader checks each record's header and CRC as it reads it.
    throw Error(path + ": corrupt PyTorch archive: " + firstLine(e));
  }
}

std::optional<int64_t> optionalInt(const PicklePtr& dict, const std::string& key,
                                   const std::string& path) {
  const PicklePtr v = dict->get(key);
  if (!v) return std::nullopt;
  if (v->kind != Kind::kInt)
    throw Error(path + ": '" + key + "' is a " + v->kindName() + ", not an integer");
  return v->integer;
}

// The keys of a dict, for messages ("epoch, global_step, ...").
std::string keyList(const PicklePtr& dict) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : dict->entries)
    keys.push_back(k->kind == Kind::kString || k->kind == Kind::kBytes ? k->text : k->kindName());
  return listFew(keys);
}

}  // namespace

NamedTensors readTorchFile(const std::string& path) {
  return withPickle(path, [&](caffe2::serialize::PyTorchStreamReader& reader, PicklePtr root) {
    if (auto inner = root->get("state_dict"); inner && inner->kind == Kind::kDict) root = inner;
    Rebuilder rb(reader, path);
    NamedTensors out;
    flatten(root, "", rb, out, path);
    return out;
  });
}

TorchCheckpoint readTorchCheckpoint(const std::string& path) {
  return withPickle(path, [&](caffe2::serialize::PyTorchStreamReader& reader, PicklePtr root) {
    Rebuilder rb(reader, path);
    TorchCheckpoint out;
    const PicklePtr backbone = root->get("state_dict_backbone");
    if (backbone) {
      if (backbone->kind != Kind::kDict)
        throw Error(path + ": 'state_dict_backbone' is a " + backbone->kindName() +
                    ", not a state_dict");
      out.training = true;
      flatten(backbone, "", rb, out.backbone, path);
      if (const PicklePtr fc = root->get("state_dict_softmax_fc")) {
        if (fc->kind != Kind::kDict)
          throw Error(path + ": 'state_dict_softmax_fc' is a " + fc->kindName() + ", not a dict");
        const PicklePtr w = fc->get("weight");
        if (!w)
          throw Error(path + ": 'state_dict_softmax_fc' has no 'weight' (it holds " + keyList(fc) +
                      ")");
        out.head = rb.tensor(w, "state_dict_softmax_fc.weight");
        if (out.head.dim() != 2)
          throw Error(path +
                      ": 'state_dict_softmax_fc.weight' is not a classes x embedding matrix");
      }
      out.epoch = optionalInt(root, "epoch", path);
      out.global_step = optionalInt(root, "global_step", path);
      for (const auto& [key, flag] :
           {std::pair<const char*, bool*>{"state_optimizer", &out.optimizer},
            {"state_lr_scheduler", &out.scheduler}}) {
        const PicklePtr v = root->get(key);
        if (v && v->kind != Kind::kDict)
          throw Error(path + ": '" + key + "' is a " + v->kindName() + ", not a state dict");
        *flag = v != nullptr;
      }
      return out;
    }
    if (auto inner = root->get("state_dict"); inner && inner->kind == Kind::kDict) root = inner;
    // A dict with numbers or other non-tensor entries beside dicts is a training checkpoint of
    // some layout, not a state_dict.
    for (const auto& [k, v] : root->entries)
      if (v->kind != Kind::kDict && v->kind != Kind::kObject)
        throw Error(path + ": a checkpoint dict without 'state_dict_backbone' (it holds " +
                    keyList(root) + "); expected a state_dict or an arcface_torch checkpoint");
    flatten(root, "", rb, out.backbone, path);
    return out;
  });
}

std::string LoadReport::summary() const {
  std::string s = std::to_string(loaded) + " tensors loaded";
  if (!missing.empty())
    s += "; " + std::to_string(missing.size()) + " missing: " + listFew(missing);
  if (!unexpected.empty())
    s += "; " + std::to_string(unexpected.size()) + " unexpected: " + listFew(unexpected);
  if (!mismatched.empty())
    s += "; " + std::to_string(mismatched.size()) + " mis-shaped: " + listFew(mismatched);
  return s;
}

LoadReport loadStateDict(torch::nn::Module& module, const NamedTensors& tensors, bool allow_partial,
                         const std::string& source) {
  std::map<std::string, torch::Tensor> file;
  for (const auto& [name, t] : tensors)
    file[name.rfind("module.", 0) == 0 ? name.substr(7) : name] = t;

  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& p : module.named_parameters()) targets.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers()) targets.emplace_back(b.key(), b.value());

  LoadReport report;
  std::set<std::string> used;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  for (const auto& [name, dst] : targets) {
    auto it = file.find(name);
    if (it == file.end()) {
      if (!endsWith(name, "num_batches_tracked")) report.missing.push_back(name);
      continue;
    }
    used.insert(name);
    if (it->second.sizes() != dst.sizes()) {
      report.mismatched.push_back(name + ": file " + shapeStr(it->second.sizes()) + " vs model " +
                                  shapeStr(dst.sizes()));
      continue;
    }
    copies.emplace_back(dst, it->second);
  }
  for (const auto& [name, t] : file)
    if (!used.count(name)) report.unexpected.push_back(name);
  if (!report.complete() && !allow_partial)
    throw Error(source + ": state_dict does not fit the model: " + report.summary() +
                " (--allow-partial imports the rest)");
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src.to(dst.dtype()));
  report.loaded = static_cast<int>(copies.size());
  return report;
}

}  // namespace msconv::io
