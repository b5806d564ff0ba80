#include "msconv/nn/inference.h"

#include <torch/torch.h>

#include "msconv/error.h"
#include "msconv/nn/batch_norm.h"

namespace msconv::nn {
namespace {

// Folds `bn` (eval mode, running statistics) into `conv`: w' = w * s, b' = (b - mean) * s + beta
// with s = gamma / sqrt(var + eps), per output channel, computed in double precision.
void foldInto(torch::nn::Conv2dImpl& conv, BatchNorm2dImpl& bn) {
  torch::NoGradGuard no_grad;
  const auto w = conv.weight.detach();
  const int64_t out = w.size(0);
  const auto opts = torch::TensorOptions().dtype(torch::kDouble).device(w.device());
  const auto mean = bn.running_mean.detach().to(opts);
  const auto var = bn.running_var.detach().to(opts);
  auto s = torch::rsqrt(var + bn.options.eps());
  auto beta = torch::zeros({out}, opts);
  if (bn.options.affine()) {
    s = s * bn.weight.detach().to(opts);
    beta = bn.bias.detach().to(opts);
  }
  const auto b0 = conv.bias.defined() ? conv.bias.detach().to(opts) : torch::zeros({out}, opts);
  const auto w_new = (w.to(opts) * s.view({out, 1, 1, 1})).to(w.scalar_type());
  const auto b_new = ((b0 - mean) * s + beta).to(w.scalar_type());
  conv.weight.set_data(w_new.contiguous(w.suggest_memory_format()));
  // A convolution built without bias holds an undefined "bias" parameter: its forward reads the
  // member, which now holds the folded bias (not a registered parameter: the inference form is
  // not saved or trained).
  if (conv.bias.defined())
    conv.bias.set_data(b_new);
  else
    conv.bias = b_new;
  bn.folded = true;
}

bool foldable(const BatchNorm2dImpl& bn, const torch::nn::Conv2dImpl& conv) {
  return !bn.folded && bn.options.track_running_stats() && bn.running_mean.defined() &&
         bn.running_var.defined() && bn.options.num_features() == conv.options.out_channels() &&
         conv.weight.dim() == 4 && conv.weight.is_floating_point();
}

// Every Sequential's (convolution, BatchNorm) neighbours: the conv + BN [+ activation] stacks the
// backbones and operators are built of (nn::convBnAct), where the convolution's output reaches
// nothing but the BatchNorm.
int foldSequentials(torch::nn::Module& model) {
  int n = 0;
  for (const auto& m : model.modules()) {
    auto* seq = dynamic_cast<torch::nn::SequentialImpl*>(m.get());
    if (!seq) continue;
    const auto children = seq->children();
    for (size_t i = 0; i + 1 < children.size(); ++i) {
      auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(children[i].get());
      auto* bn = dynamic_cast<BatchNorm2dImpl*>(children[i + 1].get());
      if (conv && bn && foldable(*bn, *conv)) {
        foldInto(*conv, *bn);
        ++n;
      }
    }
  }
  return n;
}

}  // namespace

InferenceInfo prepareInference(BackboneImpl& model, const InferenceOptions& o) {
  InferenceInfo info;
  if (!model.differentiable()) return info;
  model.eval();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model.parameters()) p.requires_grad_(false);
  }
  if (o.fold_batchnorm) {
    info.folded = foldSequentials(model);
    for (const auto& [conv, bn] : model.convBatchNormPairs())
      if (conv && bn && foldable(*bn, *conv)) {
        foldInto(*conv, *bn);
        ++info.folded;
      }
  }
  if (o.channels_last) {
    toChannelsLast(model);
    info.channels_last = true;
  }
  model.markInferenceForm();
  return info;
}

Backbone inferenceCopy(const Backbone& model, const InferenceOptions& o, InferenceInfo* info) {
  if (!model->differentiable() || model->inferenceForm()) return model;
  Backbone copy = makeBackbone(model->arch(), model->op());
  const auto params = model->named_parameters(), buffers = model->named_buffers();
  if (params.size() > 0) copy->to(params[0].value().device());
  torch::NoGradGuard no_grad;
  for (auto& p : copy->named_parameters()) {
    const auto* src = params.find(p.key());
    if (!src) throw Error("inference copy of " + model->arch().name + ": no parameter " + p.key());
    p.value().copy_(*src);
  }
  for (auto& b : copy->named_buffers()) {
    const auto* src = buffers.find(b.key());
    if (!src) throw Error("inference copy of " + model->arch().name + ": no buffer " + b.key());
    b.value().copy_(*src);
  }
  const auto i = prepareInference(*copy, o);
  if (info) *info = i;
  return copy;
}

torch::Tensor inferenceInput(const BackboneImpl& model, const torch::Tensor& x) {
  return model.inferenceForm() && x.dim() == 4 ? x.contiguous(torch::MemoryFormat::ChannelsLast)
                                               : x;
}

}  // namespace msconv::nn
