#include "msconv/nn/operators.h"

#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>

#include <algorithm>
#include <cmath>

#include "msconv/error.h"
#include "msconv/nn/bn_prelu.h"
#include "msconv/nn/fusion.h"
#include "msconv/nn/gate_net.h"
#include "msconv/nn/peers.h"

namespace msconv::nn {
namespace {

int resolveGroups(const OpSpec& spec, const OpContext& ctx) {
  const bool own = spec.groups > 0;
  const int g = own ? spec.groups : ctx.default_groups;
  if (ctx.channels % g != 0)
    throw Error(describeOperator(spec, ctx.layer) + ": " + std::to_string(ctx.channels) +
                " channels are not divisible by G=" + std::to_string(g) +
                (own ? " (the operator's option G)" : " (the architecture's option G)"));
  return g;
}

int reducedWidth(const OpSpec& spec, const OpContext& ctx) {
  const int L = spec.min_dim > 0 ? spec.min_dim : ctx.default_min_dim;
  return std::max(ctx.channels / spec.reduction, L);
}

torch::Tensor seqForward(torch::nn::ModuleList& list, size_t i, const torch::Tensor& x) {
  torch::nn::Sequential seq(list->ptr<torch::nn::SequentialImpl>(i));
  return forwardConvBnAct(seq, x);
}

}  // namespace

std::string describeOperator(const OpSpec& spec, const std::string& layer) {
  return "operator '" + spec.str() + "'" + (layer.empty() ? "" : " at " + layer);
}

torch::Tensor OperatorImpl::applyStride(const torch::Tensor& x) const {
  return stride_ > 1 ? torch::avg_pool2d(x, 3, stride_, 1, /*ceil_mode=*/false,
                                         /*count_include_pad=*/false)
                     : x;
}

void OperatorImpl::init(const OpSpec& spec, int channels, int stride) {
  spec_ = spec;
  channels_ = channels;
  stride_ = stride;
}

void OperatorImpl::checkInput(const torch::Tensor& x, const std::string& layer) const {
  if (x.dim() != 4 || x.size(1) != channels_)
    throw Error(describeOperator(spec_, layer) + ": expected N x " + std::to_string(channels_) +
                " x H x W input, got " + std::to_string(x.dim()) + "-d tensor" +
                (x.dim() >= 2 ? " with " + std::to_string(x.size(1)) + " channels" : ""));
}

Operator makeOperator(const OpSpec& spec, const OpContext& ctx) {
  if (ctx.channels <= 0 || ctx.stride <= 0)
    throw Error("operator '" + spec.str() + "': channels and stride must be positive");
  switch (spec.kind) {
    case OpKind::kPlainConv:
      return std::make_shared<PlainConvImpl>(spec, ctx);
    case OpKind::kConv3x3:
      return std::make_shared<Conv3x3Impl>(spec, ctx);
    case OpKind::kMSConv:
    case OpKind::kMSConvOfficial:
      return std::make_shared<MSConvImpl>(spec, ctx);
    case OpKind::kSKConv:
      return std::make_shared<SKConvImpl>(spec, ctx);
    case OpKind::kSCConv:
      return std::make_shared<SCConvImpl>(spec, ctx);
    case OpKind::kGhost:
    case OpKind::kGhostV2:
      return std::make_shared<GhostImpl>(spec, ctx);
    case OpKind::kPConv:
      return std::make_shared<PConvImpl>(spec, ctx);
    case OpKind::kStar:
      return std::make_shared<StarImpl>(spec, ctx);
  }
  throw Error("operator '" + spec.str() + "' has no implementation");
}

// ---- conv ----------------------------------------------------------------------------------

PlainConvImpl::PlainConvImpl(const OpSpec& spec, const OpContext& ctx) {
  init(spec, ctx.channels, ctx.stride);
  weight = register_parameter("weight", torch::empty({ctx.channels, ctx.channels, 3, 3}));
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
}

torch::Tensor PlainConvImpl::forward(const torch::Tensor& x, Tap* tap, const std::string& layer) {
  checkInput(x, layer);
  auto out = torch::conv2d(x, weight, {}, stride_, 1);
  reportMacs(this, out.numel() / out.size(0) * channels_ * 9);
  if (tap) tap->put(layer, "out", out);
  return out;
}

// ---- conv3x3 -------------------------------------------------------------------------------

Conv3x3Impl::Conv3x3Impl(const OpSpec& spec, const OpContext& ctx) {
  init(spec, ctx.channels, ctx.stride);
  const int g = resolveGroups(spec, ctx);
  body = convBnAct({ctx.channels, ctx.channels, 3, ctx.stride, 1, 1, g}, preluAct(ctx.prelu));
  // Register the stack's children directly ("0", "1", "2") so names read conv2_msconv.0.weight.
  for (const auto& item : body->named_children()) register_module(item.key(), item.value());
}

torch::Tensor Conv3x3Impl::forward(const torch::Tensor& x, Tap* tap, const std::string& layer) {
  checkInput(x, layer);
  auto out = forwardConvBnAct(body, x);
  if (tap) tap->put(layer, "out", out);
  return out;
}

// ---- MSConv --------------------------------------------------------------------------------

MSConvImpl::MSConvImpl(const OpSpec& spec, const OpContext& ctx) {
  init(spec, ctx.channels, ctx.stride);
  official_ = spec.kind == OpKind::kMSConvOfficial;
  const int C = ctx.channels, g = resolveGroups(spec, ctx);
  reduced_ = reducedWidth(spec, ctx);
  const Act act = official_ ? preluAct(ctx.prelu) : Act::kReLU;

  convs = register_module("convs", torch::nn::ModuleList());
  for (int dil : {spec.dilation1, spec.dilation2})
    convs->push_back(convBnAct({C, C, 3, ctx.stride, dil, dil, g}, act));
  fc = register_module("fc", convBnAct({C, reduced_, 1}, act));
  fcs = register_module("fcs", torch::nn::ModuleList());
  for (int i = 0; i < 2; ++i) {
    if (official_) {
      fcs->push_back(convBnAct({reduced_, C, 1}, act));
    } else {
      ConvOpts head{reduced_, C, 1};
      head.bias = true;
      fcs->push_back(makeConv(head));
    }
  }
  if (official_) fc_d = register_module("fc_d", convBnAct({C, C, 1}, act));
}

torch::Tensor MSConvImpl::gate(const torch::Tensor& s, bool fused) {
  if (fused && is_training()) {
    const GateNet net{gateLayer(fc.ptr()), gateLayer(fcs->ptr(0)), gateLayer(fcs->ptr(1)),
                      official_ ? 1e-6 : 0.0};
    if (gateFusable(net, s)) return fusedGate(net, s);
  }
  auto head = [&](size_t i, const torch::Tensor& z) {
    return official_ ? seqForward(fcs, i, z) : fcs[i]->as<CountedConv2dImpl>()->forward(z);
  };
  const torch::Tensor z = forwardConvBnAct(fc, s);
  torch::Tensor logit = head(0, z) - head(1, z);
  if (official_) logit = logit + 1e-6;
  return torch::sigmoid(logit);
}

torch::Tensor MSConvImpl::forward(const torch::Tensor& x, Tap* tap, const std::string& layer) {
  checkInput(x, layer);
  const torch::Tensor u1 = seqForward(convs, 0, x);
  const torch::Tensor u2 = seqForward(convs, 1, x);
  const GateFn gate = [&](const torch::Tensor& pooled) {
    return this->gate(pooled, fusedFusionEnabled());
  };
  const bool diff_add = spec_.diff == DiffTerm::kAdd;
  torch::Tensor s, c, fused;
  if (spec_.fusion == PoolFusion::kMul) {
    // The paper's stage: one fused node (or the composed tensor ops when switched off).
    const FusionResult r = fusedFusionEnabled() ? fusedMsFusion(u1, u2, gate, diff_add)
                                                : composedMsFusion(u1, u2, gate, diff_add);
    s = r.s, c = r.c, fused = r.v;
  } else {  // the ablation's pooling switches, composed
    s = spec_.fusion == PoolFusion::kAdd ? (u1 + u2).mean({2, 3}, true) : u1.mean({2, 3}, true);
    c = gate(s);
    fused = u2 + c * (diff_add ? u1 + u2 : u1 - u2);
  }
  const torch::Tensor out = official_ ? forwardConvBnAct(fc_d, fused) : fused;
  if (tap && tap->wants(layer)) {
    tap->put(layer, "U1", u1);
    tap->put(layer, "U2", u2);
    tap->put(layer, "pooled", s);
    tap->put(layer, "gate", c);
    tap->put(layer, "fused", fused);
    tap->put(layer, "out", out);
  }
  return out;
}

// ---- SKConv --------------------------------------------------------------------------------

SKConvImpl::SKConvImpl(const OpSpec& spec, const OpContext& ctx) {
  init(spec, ctx.channels, ctx.stride);
  const int C = ctx.channels, g = resolveGroups(spec, ctx);
  reduced_ = reducedWidth(spec, ctx);
  convs = register_module("convs", torch::nn::ModuleList());
  for (int dil : {spec.dilation1, spec.dilation2})
    convs->push_back(convBnAct({C, C, 3, ctx.stride, dil, dil, g}, Act::kReLU));
  fc = register_module("fc", convBnAct({C, reduced_, 1}, Act::kReLU));
  fcs = register_module("fcs", torch::nn::ModuleList());
  for (int i = 0; i < 2; ++i) {
    ConvOpts head{reduced_, C, 1};
    head.bias = true;
    fcs->push_back(makeConv(head));
  }
}

torch::Tensor SKConvImpl::forward(const torch::Tensor& x, Tap* tap, const std::string& layer) {
  checkInput(x, layer);
  const torch::Tensor u1 = seqForward(convs, 0, x);
  const torch::Tensor u2 = seqForward(convs, 1, x);
  const torch::Tensor s = (u1 + u2).mean({2, 3}, true);
  const torch::Tensor z = forwardConvBnAct(fc, s);
  const torch::Tensor logits = torch::stack(
      {fcs[0]->as<CountedConv2dImpl>()->forward(z), fcs[1]->as<CountedConv2dImpl>()->forward(z)});
  const torch::Tensor w = torch::softmax(logits, 0);
  const torch::Tensor a = w[0], b = w[1];
  const torch::Tensor out = a * u1 + b * u2;
  if (tap && tap->wants(layer)) {
    tap->put(layer, "U1", u1);
    tap->put(layer, "U2", u2);
    tap->put(layer, "pooled", s);
    tap->put(layer, "gate", a);
    tap->put(layer, "out", out);
  }
  return out;
}

// ---- SCConv --------------------------------------------------------------------------------

SCConvImpl::SCConvImpl(const OpSpec& spec, const OpContext& ctx) {
  init(spec, ctx.channels, ctx.stride);
  const int C = ctx.channels;
  const std::string where = describeOperator(spec, ctx.layer);
  if (C % spec.gn_groups != 0)
    throw Error(where + ": " + std::to_string(C) +
                " channels are not divisible by gn=" + std::to_string(spec.gn_groups));
  if (C % 4 != 0)
    throw Error(where + ": needs channels divisible by 4 (halves, squeeze 2, 2 groups), got " +
                std::to_string(C));
  up_ = C / 2;
  low_ = C - up_;
  const int up_sq = up_ / 2, low_sq = low_ / 2;
  if (up_sq % 2 != 0)
    throw Error(where + ": the squeezed upper half (" + std::to_string(up_sq) +
                " channels) must split into 2 groups");
  gn = register_module("gn", torch::nn::GroupNorm(torch::nn::GroupNormOptions(spec.gn_groups, C)));
  squeeze1 = register_module("squeeze1", makeConv({up_, up_sq, 1}));
  squeeze2 = register_module("squeeze2", makeConv({low_, low_sq, 1}));
  ConvOpts gwc{up_sq, C, 3, 1, 1, 1, 2};
  gwc.bias = true;
  GWC = register_module("GWC", makeConv(gwc));
  PWC1 = register_module("PWC1", makeConv({up_sq, C, 1}));
  PWC2 = register_module("PWC2", makeConv({low_sq, C - low_sq, 1}));
  bn = register_module("bn", BatchNorm2d(C));
  act = register_module("act", makePReLU(ctx.prelu, C));
}

torch::Tensor SCConvImpl::forward(const torch::Tensor& x, Tap* tap, const std::string& layer) {
  checkInput(x, layer);
  const int64_t C = channels_;
  // SRU: the gate weights the input x itself; above the threshold (strictly) a value goes wholly
  // to the informative part, at or below it both parts take it weighted by the gate.
  const torch::Tensor gn_x = gn->forward(x);
  const torch::Tensor w_gamma = (gn->weight / gn->weight.sum()).view({1, C, 1, 1});
  const torch::Tensor reweights = torch::sigmoid(gn_x * w_gamma);
  const torch::Tensor informative = reweights > 0.5;
  const torch::Tensor w1 = torch::where(informative, torch::ones_like(reweights), reweights);
  const torch::Tensor w2 = torch::where(informative, torch::zeros_like(reweights), reweights);
  const torch::Tensor x1 = w1 * x;
  const torch::Tensor x2 = w2 * x;
  const int64_t half = C / 2;
  auto x1s = torch::split(x1, half, 1), x2s = torch::split(x2, half, 1);
  const torch::Tensor sru = applyStride(torch::cat({x1s[0] + x2s[1], x1s[1] + x2s[0]}, 1));
  // CRU
  auto parts = torch::split_with_sizes(sru, {up_, low_}, 1);
  const torch::Tensor up = squeeze1->forward(parts[0]);
  const torch::Tensor low = squeeze2->forward(parts[1]);
  const torch::Tensor y1 = GWC->forward(up) + PWC1->forward(up);
  const torch::Tensor y2 = torch::cat({PWC2->forward(low), low}, 1);
  torch::Tensor out = torch::cat({y1, y2}, 1);
  out = torch::softmax(out.mean({2, 3}, true), 1) * out;
  auto halves = torch::split(out, C, 1);
  const torch::Tensor cru = halves[0] + halves[1];
  const torch::Tensor result = forwardBnAct(*bn, act.get(), cru);
  if (tap && tap->wants(layer)) {
    tap->put(layer, "gate", reweights);
    tap->put(layer, "sru", sru);
    tap->put(layer, "up", y1);
    tap->put(layer, "low", y2);
    tap->put(layer, "cru", cru);
    tap->put(layer, "out", result);
  }
  return result;
}

}  // namespace msconv::nn
