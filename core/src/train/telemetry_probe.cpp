#include "msconv/train/telemetry_probe.h"

#include <torch/torch.h>

#include <map>

#include "msconv/nn/backbone.h"

namespace msconv::train {
namespace {

// "stage_2.1.conv1.weight" -> "stage2.1"; "layer3.0.bn1.weight" -> "stage3.0"; the stem's
// parameters -> "stem"; the embedding layer's -> "embedding".
std::string groupOf(const std::string& name) {
  auto dot = name.find('.');
  const std::string first = name.substr(0, dot);
  auto unit = [&](const std::string& stage) {
    const auto second = name.find('.', dot + 1);
    return "stage" + stage + "." + name.substr(dot + 1, second - dot - 1);
  };
  if (first.rfind("stage_", 0) == 0 && dot != std::string::npos) return unit(first.substr(6));
  if (first.rfind("layer", 0) == 0 && first.size() > 5 && dot != std::string::npos)
    return unit(first.substr(5));
  if (first == "classifier" || first == "fc" || first == "features" || first == "bn2")
    return "embedding";
  return "stem";
}

}  // namespace

TelemetryProbe::TelemetryProbe(nn::BackboneImpl& model, torch::nn::Module* head, int every,
                               int bins)
    : model_(model), head_(head), every_(every), bins_(bins) {
  header_.bins = bins;
  header_.every = every;
  std::vector<std::string> wanted;
  for (const auto& l : model.layerNames()) {
    const bool op = l.size() > 3 && l.compare(l.size() - 3, 3, ".op") == 0;
    if (!op) header_.layers.push_back(l);
  }
  const std::string base = model.op().baseName();
  if (base.rfind("msconv", 0) == 0 || base == "skconv" || base == "scconv")
    header_.gates = model.operatorLayers();
  wanted = header_.layers;
  wanted.insert(wanted.end(), header_.gates.begin(), header_.gates.end());
  tap_ = std::make_unique<nn::Tap>(wanted);
  // Gradient groups in parameter order.
  std::map<std::string, size_t> index;
  const auto named = model.named_parameters();
  for (size_t i = 0; i < named.size(); ++i) {
    const std::string g = groupOf(named[i].key());
    auto it = index.find(g);
    if (it == index.end()) {
      it = index.emplace(g, header_.groups.size()).first;
      header_.groups.push_back(g);
      group_params_.emplace_back();
    }
    group_params_[it->second].push_back(i);
  }
  if (head_) header_.groups.push_back("head");
}

nn::Tap* TelemetryProbe::tap() {
  tap_->clear();
  return tap_.get();
}

telemetry::Record TelemetryProbe::collect(int64_t step, double wall, double loss) {
  torch::NoGradGuard no_grad;
  telemetry::Record r;
  r.step = step;
  r.wall = wall;
  r.loss = static_cast<float>(loss);
  for (const auto& l : header_.layers) {
    telemetry::LayerStats s;
    if (tap_->has(l, "out")) {
      const auto x = tap_->get(l, "out").detach().to(torch::kFloat);
      const auto m = x.mean();
      s.mean = m.item<float>();
      s.std = x.numel() > 1 ? x.std().item<float>() : 0.f;
      s.absmax = x.abs().max().item<float>();
      // Dead channels: no positive value anywhere in the batch.
      const auto per_channel = x.dim() == 4 ? x.amax({0, 2, 3}) : x.amax(0);
      s.dead = (per_channel <= 0).to(torch::kFloat).mean().item<float>();
    }
    r.layers.push_back(s);
  }
  const auto params = model_.parameters();
  for (size_t g = 0; g < group_params_.size(); ++g) {
    double sq = 0;
    for (size_t i : group_params_[g]) {
      const auto& grad = params[i].grad();
      if (grad.defined()) sq += grad.pow(2).sum().item<double>();
    }
    r.grad_norms.push_back(static_cast<float>(std::sqrt(sq)));
  }
  if (head_) {
    double sq = 0;
    for (const auto& p : head_->parameters())
      if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
    r.grad_norms.push_back(static_cast<float>(std::sqrt(sq)));
  }
  for (const auto& l : header_.gates) {
    std::vector<float> hist(bins_, 0.f);
    if (tap_->has(l, "gate")) {
      const auto c = tap_->get(l, "gate").detach().to(torch::kFloat).flatten();
      const auto h = torch::histc(c.clamp(0, 1), bins_, 0, 1) / static_cast<double>(c.numel());
      for (int b = 0; b < bins_; ++b) hist[b] = h[b].item<float>();
    }
    r.gates.push_back(hist);
  }
  tap_->clear();
  return r;
}

}  // namespace msconv::train
