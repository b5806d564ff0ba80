#include "msconv/nn/peers.h"

#include <torch/nn/modules/activation.h>
#include <torch/torch.h>

#include "msconv/error.h"
#include "msconv/nn/batch_norm.h"
#include "msconv/nn/bn_prelu.h"

namespace msconv::nn {
namespace {

CountedConv2d conv(int in, int out, std::vector<int64_t> kernel, int stride, bool bias,
                   int groups = 1) {
  const std::vector<int64_t> pad = {kernel[0] / 2, kernel[1] / 2};
  return CountedConv2d(torch::nn::Conv2dOptions(in, out, kernel)
                           .stride(stride)
                           .padding(pad)
                           .groups(groups)
                           .bias(bias));
}

}  // namespace

// ---- Ghost, GhostV2 ---------------------------------------------------------------------------

GhostImpl::GhostImpl(const OpSpec& spec, const OpContext& ctx) {
  init(spec, ctx.channels, ctx.stride);
  attention_ = spec.kind == OpKind::kGhostV2;
  const int C = ctx.channels, init = (C + spec.ratio - 1) / spec.ratio;
  const int cheap = init * (spec.ratio - 1);
  if (init + cheap < C || cheap < 1)
    throw Error(describeOperator(spec, ctx.layer) + ": option 's'=" + std::to_string(spec.ratio) +
                " leaves no " + "channel to the cheap operation at " + std::to_string(C) +
                " channels");
  primary_conv = register_module("primary_conv", torch::nn::Sequential());
  primary_conv->push_back(conv(C, init, {3, 3}, ctx.stride, false));
  primary_conv->push_back(BatchNorm2d(init));
  primary_conv->push_back(torch::nn::ReLU());
  cheap_operation = register_module("cheap_operation", torch::nn::Sequential());
  cheap_operation->push_back(conv(init, cheap, {spec.dw, spec.dw}, 1, false, init));
  cheap_operation->push_back(BatchNorm2d(cheap));
  cheap_operation->push_back(torch::nn::ReLU());
  if (attention_) {
    const int64_t k = spec.kernel;
    short_conv = register_module("short_conv", torch::nn::Sequential());
    short_conv->push_back(conv(C, C, {3, 3}, ctx.stride, false));
    short_conv->push_back(BatchNorm2d(C));
    short_conv->push_back(conv(C, C, {1, k}, 1, false, C));
    short_conv->push_back(BatchNorm2d(C));
    short_conv->push_back(conv(C, C, {k, 1}, 1, false, C));
    short_conv->push_back(BatchNorm2d(C));
  }
}

torch::Tensor GhostImpl::forward(const torch::Tensor& x, Tap* tap, const std::string& layer) {
  checkInput(x, layer);
  if (attention_ && (x.size(2) < 2 || x.size(3) < 2))
    throw Error(describeOperator(spec_, layer) +
                ": the DFC attention pools 2x2 and needs maps of at least 2x2, got " +
                std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
  const torch::Tensor x1 = forwardConvBnAct(primary_conv, x);
  const torch::Tensor x2 = forwardConvBnAct(cheap_operation, x1);
  torch::Tensor out = torch::cat({x1, x2}, 1).narrow(1, 0, channels_);
  torch::Tensor attention;
  if (attention_) {
    const torch::Tensor res = short_conv->forward(torch::avg_pool2d(x, 2, 2));
    attention = torch::upsample_nearest2d(torch::sigmoid(res), {out.size(2), out.size(3)});
    out = out * attention;
  }
  if (tap && tap->wants(layer)) {
    tap->put(layer, "intrinsic", x1);
    tap->put(layer, "cheap", x2);
    if (attention.defined()) tap->put(layer, "attention", attention);
    tap->put(layer, "out", out);
  }
  return out;
}

// ---- PConv (FasterNet's block) ----------------------------------------------------------------

PConvImpl::PConvImpl(const OpSpec& spec, const OpContext& ctx) {
  init(spec, ctx.channels, ctx.stride);
  const int C = ctx.channels;
  convolved_ = C / spec.div;
  if (convolved_ < 1)
    throw Error(describeOperator(spec, ctx.layer) + ": option 'div'=" + std::to_string(spec.div) +
                " leaves no channel to the partial convolution at " + std::to_string(C) +
                " channels");
  spatial_mixing = register_module("spatial_mixing", std::make_shared<torch::nn::Module>());
  partial_conv3 = spatial_mixing->register_module("partial_conv3",
                                                  conv(convolved_, convolved_, {3, 3}, 1, false));
  const int hidden = C * spec.mlp;
  mlp = register_module("mlp", torch::nn::Sequential());
  mlp->push_back(conv(C, hidden, {1, 1}, 1, false));
  mlp->push_back(BatchNorm2d(hidden));
  if (ctx.act == FrameAct::kGELU)
    mlp->push_back(torch::nn::GELU());
  else
    mlp->push_back(torch::nn::ReLU());
  mlp->push_back(conv(hidden, C, {1, 1}, 1, false));
}

torch::Tensor PConvImpl::forward(const torch::Tensor& x, Tap* tap, const std::string& layer) {
  checkInput(x, layer);
  const torch::Tensor in = applyStride(x);
  auto parts = torch::split_with_sizes(in, {convolved_, channels_ - convolved_}, 1);
  const torch::Tensor convolved = partial_conv3->forward(parts[0]);
  const torch::Tensor out = in + mlp->forward(torch::cat({convolved, parts[1]}, 1));
  if (tap && tap->wants(layer)) {
    tap->put(layer, "convolved", convolved);
    tap->put(layer, "untouched", parts[1]);
    tap->put(layer, "out", out);
  }
  return out;
}

// ---- Star (StarNet's block) -------------------------------------------------------------------

StarImpl::StarImpl(const OpSpec& spec, const OpContext& ctx) {
  init(spec, ctx.channels, ctx.stride);
  const int C = ctx.channels, hidden = C * spec.mlp, k = spec.kernel;
  auto convBn = [&](const char* name, CountedConv2d c, bool bn, int bn_channels) {
    torch::nn::Sequential seq;
    seq->push_back("conv", c);
    if (bn) seq->push_back("bn", BatchNorm2d(bn_channels));
    return register_module(name, seq);
  };
  dwconv = convBn("dwconv", conv(C, C, {k, k}, ctx.stride, true, C), true, C);
  f1 = convBn("f1", conv(C, hidden, {1, 1}, 1, true), false, 0);
  f2 = convBn("f2", conv(C, hidden, {1, 1}, 1, true), false, 0);
  g = convBn("g", conv(hidden, C, {1, 1}, 1, true), true, C);
  dwconv2 = convBn("dwconv2", conv(C, C, {k, k}, 1, true, C), false, 0);
}

torch::Tensor StarImpl::forward(const torch::Tensor& x, Tap* tap, const std::string& layer) {
  checkInput(x, layer);
  const torch::Tensor y = forwardConvBnAct(dwconv, x);
  const torch::Tensor a = torch::hardtanh(f1->forward(y), 0.0, 6.0);  // ReLU6
  const torch::Tensor b = f2->forward(y);
  const torch::Tensor star = a * b;
  torch::Tensor out = dwconv2->forward(forwardConvBnAct(g, star));
  if (stride_ == 1) out = out + x;
  if (tap && tap->wants(layer)) {
    tap->put(layer, "branch1", a);
    tap->put(layer, "branch2", b);
    tap->put(layer, "star", star);
    tap->put(layer, "out", out);
  }
  return out;
}

}  // namespace msconv::nn
