#include "msconv/nn/layers.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>

namespace msconv::nn {
namespace {
thread_local MacCounter* g_counter = nullptr;
}

MacCountScope::MacCountScope(MacCounter* counter) : previous_(g_counter) { g_counter = counter; }
MacCountScope::~MacCountScope() { g_counter = previous_; }

void reportMacs(const torch::nn::Module* module, int64_t macs) {
  if (g_counter) g_counter->add(module, macs);
}

torch::Tensor CountedConv2dImpl::forward(const torch::Tensor& input) {
  torch::Tensor out = torch::nn::Conv2dImpl::forward(input);
  if (g_counter) {
    const auto& k = options.kernel_size();
    const int64_t per_out = (options.in_channels() / options.groups()) * (*k)[0] * (*k)[1];
    g_counter->add(this, out.numel() / out.size(0) * per_out);
  }
  return out;
}

torch::Tensor CountedLinearImpl::forward(const torch::Tensor& input) {
  torch::Tensor out = torch::nn::LinearImpl::forward(input);
  if (g_counter) g_counter->add(this, options.in_features() * options.out_features());
  return out;
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
  seq->push_back(torch::nn::BatchNorm2d(o.out));
  if (act == Act::kReLU) seq->push_back(torch::nn::ReLU());
  if (act == Act::kPReLU) seq->push_back(torch::nn::PReLU(torch::nn::PReLUOptions().num_parameters(o.out)));
  return seq;
}

}  // namespace msconv::nn
