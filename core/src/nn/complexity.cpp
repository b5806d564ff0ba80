#include "msconv/nn/complexity.h"

#include <torch/torch.h>

#include <map>
#include <unordered_map>

#include "msconv/nn/backbone.h"
#include "msconv/nn/layers.h"

namespace msconv::nn {
namespace {

std::string truncate(const std::string& name, int depth) {
  size_t pos = 0;
  for (int i = 0; i < depth; ++i) {
    pos = name.find('.', pos);
    if (pos == std::string::npos) return name;
    if (i + 1 < depth) ++pos;
  }
  return name.substr(0, pos);
}

class Recorder : public MacCounter {
 public:
  void add(const torch::nn::Module* module, int64_t macs) override {
    if (!seen_.count(module)) order_.push_back(module);
    seen_[module] += macs;
  }
  std::unordered_map<const torch::nn::Module*, int64_t> seen_;
  std::vector<const torch::nn::Module*> order_;
};

}  // namespace

Complexity measureComplexity(BackboneImpl& model, int input, int depth) {
  Complexity out;
  out.input = input;
  const bool was_training = model.is_training();
  model.eval();
  Recorder rec;
  {
    torch::NoGradGuard no_grad;
    MacCountScope scope(&rec);
    model.forward(torch::zeros({1, 3, input, input}));
  }
  model.train(was_training);

  std::unordered_map<const torch::nn::Module*, std::string> names;
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    names[item.value().get()] = item.key();

  std::vector<std::string> order;
  std::map<std::string, ModuleCost> rows;
  auto row = [&](const std::string& key) -> ModuleCost& {
    auto it = rows.find(key);
    if (it == rows.end()) {
      order.push_back(key);
      it = rows.emplace(key, ModuleCost{key, 0, 0}).first;
    }
    return it->second;
  };
  for (const auto* m : rec.order_) {
    const auto it = names.find(m);
    const std::string key =
        truncate(it == names.end() ? std::string("(model)") : it->second, depth);
    row(key).macs += rec.seen_[m];
    out.macs += rec.seen_[m];
  }
  for (const auto& p : model.named_parameters()) {
    const int64_t n = p.value().numel();
    out.params += n;
    if (p.value().requires_grad()) out.trainable_params += n;
    const std::string& name = p.key();
    const std::string key = truncate(name.substr(0, name.rfind('.')), depth);
    row(key).params += n;
  }
  for (const auto& key : order) out.modules.push_back(rows[key]);
  return out;
}

}  // namespace msconv::nn
