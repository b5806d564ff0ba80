#include "msconv/nn/layers.h"

#include "msconv/nn/prelu.h"

#include <torch/nn/modules/activation.h>
#include "msconv/nn/batch_norm.h"
#include "msconv/nn/group_conv.h"

namespace msconv::nn {
namespace {
thread_local MacCounter* g_counter = nullptr;
}

MacCountScope::MacCountScope(MacCounter* counter) : previous_(g_counter) {
  g_counter = counter;
}
MacCountScope::~MacCountScope() {
  g_counter = previous_;
}

void reportMacs(const torch::nn::Module* module, int64_t macs) {
  if (g_counter) g_counter->add(module, macs);
}

torch::Tensor CountedConv2dImpl::forward(const torch::Tensor& input) {
  const auto& k = options.kernel_size();
  const auto& s = options.stride();
  const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&options.padding());
  torch::Tensor out;
  if ((*k)[0] == 1 && (*k)[1] == 1 && ((*s)[0] > 1 || (*s)[1] > 1) && pad && (**pad)[0] == 0 &&
      (**pad)[1] == 0 && options.groups() == 1) {
    // A strided 1x1 convolution is a subsample followed by a 1x1 convolution. Written so, it also
    // avoids a LibTorch 1.13 / oneDNN fault in the channels-last backward of strided 1x1
    // convolutions with 8 input channels.
    const auto sub = input.slice(2, 0, c10::nullopt, (*s)[0]).slice(3, 0, c10::nullopt, (*s)[1]);
    out = torch::conv2d(sub, weight, bias);
  } else if ((*k)[0] == 1 && (*k)[1] == 1 && input.dim() == 4 && input.size(2) == 1 &&
             input.size(3) == 1 && pad && (**pad)[0] == 0 && (**pad)[1] == 0 &&
             options.groups() == 1) {
    // A 1x1 convolution of 1x1 maps (the gate networks of MSConv and SKConv) is a matrix
    // product; as one it costs a fraction of the convolution primitive's set-up.
    const auto w = weight.view({weight.size(0), weight.size(1)});
    const auto x = input.reshape({input.size(0), input.size(1)});
    out = (bias.defined() ? torch::addmm(bias, x, w.t()) : torch::mm(x, w.t()))
              .view({input.size(0), weight.size(0), 1, 1});
  } else if (const auto plan = pad && c10::get_if<torch::enumtype::kZeros>(&options.padding_mode())
                                   ? groupConvPlan(input, weight, bias.defined(), *k, *s, **pad,
                                                   options.dilation(), options.groups())
                                   : std::nullopt;
             plan) {
    // The MSConv / SKConv branches' grouped (dilated) 3x3 convolutions: the hand-written kernels
    // for the passes where they were measured faster than oneDNN for this shape (nn/group_conv.h).
    out = groupConv3x3(input, weight, (*s)[0], (*options.dilation())[0], options.groups(), bias,
                       *plan);
  } else {
    out = torch::nn::Conv2dImpl::forward(input);
  }
  countMacs(out);
  return out;
}

torch::Tensor CountedConv2dImpl::forwardFused(const torch::Tensor& input,
                                              const ConvEpilogue& epilogue) {
  const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&options.padding());
  if (!inferenceConvEnabled() || !pad ||
      !c10::get_if<torch::enumtype::kZeros>(&options.padding_mode()))
    return {};
  const auto& k = options.kernel_size();
  const auto& s = options.stride();
  const auto& d = options.dilation();
  // Where the grouped-convolution plan measured the hand-written forward faster than oneDNN's for
  // this shape, that runs, with the bias and a shared-slope PReLU in its own epilogue.
  if (const auto plan =
          groupConvPlan(input, weight, bias.defined(), *k, *s, **pad, d, options.groups());
      plan && plan->forward) {
    const auto& e = epilogue;
    if (e.residual.defined() || e.relu || (e.slope.defined() && e.slope.numel() != 1) ||
        (c10::GradMode::is_enabled() && (input.requires_grad() || weight.requires_grad() ||
                                         (bias.defined() && bias.requires_grad()) ||
                                         (e.slope.defined() && e.slope.requires_grad()))))
      return {};
    torch::Tensor out =
        groupConv3x3Inference(input, weight, (*s)[0], (*d)[0], options.groups(), bias, e.slope);
    countMacs(out);
    return out;
  }
  ConvGeometry g;
  g.stride = {(*s)[0], (*s)[1]};
  g.padding = {(**pad)[0], (**pad)[1]};
  g.dilation = {(*d)[0], (*d)[1]};
  g.groups = options.groups();
  torch::Tensor out = inferenceConv(fused_, input, weight, bias, g, epilogue);
  if (out.defined()) countMacs(out);
  return out;
}

void CountedConv2dImpl::countMacs(const torch::Tensor& out) {
  if (!g_counter) return;
  const auto& k = options.kernel_size();
  const int64_t per_out = (options.in_channels() / options.groups()) * (*k)[0] * (*k)[1];
  g_counter->add(this, out.numel() / out.size(0) * per_out);
}

torch::Tensor CountedLinearImpl::forward(const torch::Tensor& input) {
  torch::Tensor out = torch::nn::LinearImpl::forward(input);
  if (g_counter) g_counter->add(this, options.in_features() * options.out_features());
  return out;
}

Act preluAct(PReluSlopes slopes) {
  return slopes == PReluSlopes::kShared ? Act::kPReLUShared : Act::kPReLUChannel;
}

CountedConv2d makeConv(const ConvOpts& o) {
  return CountedConv2d(torch::nn::Conv2dOptions(o.in, o.out, o.kernel)
                           .stride(o.stride)
                           .padding(o.padding)
                           .dilation(o.dilation)
                           .groups(o.groups)
                           .bias(o.bias));
}

torch::nn::Sequential convBnAct(const ConvOpts& o, Act act) {
  torch::nn::Sequential seq;
  seq->push_back(makeConv(o));
  seq->push_back(BatchNorm2d(o.out));
  if (act == Act::kReLU) seq->push_back(torch::nn::ReLU());
  if (act == Act::kPReLUShared) seq->push_back(PReLU(1));
  if (act == Act::kPReLUChannel) seq->push_back(PReLU(o.out));
  return seq;
}

}  // namespace msconv::nn
