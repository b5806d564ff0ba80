// The hand-written grouped 3x3 convolutions against LibTorch's: outputs, input and weight
// gradients, for 4..64 channels per group, dilation 1..3, stride 1 and 2, odd maps, NCHW and
// channels-last, every ISA copy this machine has, with and without a bias, each pass by ours or by
// LibTorch in every mix; their independence of the thread count; and CountedConv2d's dispatch
// (LibTorch only when switched off, one cached decision per shape, the forward alone timed where
// no gradient is wanted); the inference form's forward with its bias + PReLU epilogue.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "msconv/error.h"
#include "msconv/nn/kernel_switch.h"
#include "msconv/nn/layers.h"
// The kernels' header is internal to the core (core/src): reached from the tests' include root.
#include "msconv/nn/group_conv.h"

using namespace msconv::nn;

namespace gct {

double relativeError(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

struct ConvCase {
  int64_t n, c, k, h, w, stride, dilation;
  bool channels_last;
};

std::string describe(const ConvCase& c) {
  return "N" + std::to_string(c.n) + " C" + std::to_string(c.c) + " K" + std::to_string(c.k) + " " +
         std::to_string(c.h) + "x" + std::to_string(c.w) + " s" + std::to_string(c.stride) + " d" +
         std::to_string(c.dilation) + (c.channels_last ? " channels-last" : " NCHW");
}

struct Result {
  torch::Tensor y, dx, dw, db;
};

// Forward and backward of one convolution, ours (custom = true, each pass as `passes` says) or
// LibTorch's, on fixed inputs, with a bias or without.
Result run(const ConvCase& c, bool custom, bool bias = false, const GroupConvPasses& passes = {}) {
  torch::manual_seed(7);
  const auto format =
      c.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  const auto x = torch::randn({c.n, c.c, c.h, c.w}).contiguous(format).requires_grad_();
  const auto w = (torch::randn({c.c, c.k, 3, 3}) * 0.3).requires_grad_();
  const auto b = bias ? torch::randn({c.c}).requires_grad_() : torch::Tensor();
  const int64_t groups = c.c / c.k;
  const auto y = custom ? groupConv3x3(x, w, c.stride, c.dilation, groups, b, passes)
                        : torch::conv2d(x, w, b, c.stride, c.dilation, c.dilation, groups);
  const auto dy = torch::randn(y.sizes()).contiguous(format);
  if (!bias) {
    const auto grads = torch::autograd::grad({y}, {x, w}, {dy});
    return {y.detach(), grads[0], grads[1], {}};
  }
  const auto grads = torch::autograd::grad({y}, {x, w, b}, {dy});
  return {y.detach(), grads[0], grads[1], grads[2]};
}

std::vector<std::string> isas() {
  std::vector<std::string> out;
  for (const char* isa : {"avx512", "avx2"}) {
    try {
      setGroupConvIsa(isa);
      out.push_back(isa);
    } catch (const std::exception&) {
    }
  }
  setGroupConvIsa("");
  return out;
}

const std::vector<ConvCase>& cases() {
  static const std::vector<ConvCase> c = {
      {2, 16, 4, 13, 13, 1, 1, false},
      {1, 32, 4, 7, 7, 2, 2, true},
      {2, 32, 8, 13, 11, 1, 3, true},
      {1, 16, 8, 28, 28, 2, 1, false},
      {3, 32, 16, 7, 7, 1, 2, false},
      {1, 48, 16, 13, 13, 2, 3, true},
      {2, 64, 32, 7, 7, 1, 1, true},
      {1, 64, 32, 4, 4, 2, 2, false},
      {1, 128, 64, 7, 7, 1, 2, false},
      {2, 64, 64, 5, 9, 2, 1, true},
      {1, 32, 16, 1, 3, 2, 3, false},
      {1, 128, 4, 28, 28, 1, 2, true},
      {2, 96, 48, 6, 5, 1, 1, true},
      // Narrow maps with an odd number of rows (the two-row kernels and their last row).
      {2, 64, 16, 5, 6, 1, 2, true},
      {2, 32, 8, 5, 3, 1, 1, false},
  };
  return c;
}

}  // namespace gct

TEST(GroupConv, MatchesLibtorchForwardAndBackward) {
  const auto available = gct::isas();
  ASSERT_FALSE(available.empty()) << "no AVX2 / AVX-512 on this machine";
  for (const auto& isa : available) {
    setGroupConvIsa(isa);
    for (const auto& c : gct::cases()) {
      SCOPED_TRACE(isa + " " + gct::describe(c));
      const auto format =
          c.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
      const auto ref = gct::run(c, false);
      const auto ours = gct::run(c, true);
      ASSERT_EQ(ours.y.sizes(), ref.y.sizes());
      EXPECT_TRUE(ours.y.is_contiguous(format));
      EXPECT_TRUE(ours.dx.is_contiguous(format));
      EXPECT_LT(gct::relativeError(ours.y, ref.y), 1e-5);
      EXPECT_LT(gct::relativeError(ours.dx, ref.dx), 1e-5);
      EXPECT_LT(gct::relativeError(ours.dw, ref.dw), 1e-5);
    }
  }
  setGroupConvIsa("");
}

// A bias (a folded BatchNorm's), and every mix of our passes with LibTorch's: the values and all
// three gradients match LibTorch's convolution.
TEST(GroupConv, BiasAndMixedPassesMatchLibtorch) {
  const std::vector<gct::ConvCase> some = {gct::cases()[0], gct::cases()[2], gct::cases()[5],
                                           gct::cases()[7], gct::cases()[13]};
  for (const auto& c : some) {
    for (int bits = 0; bits < 8; ++bits) {
      const GroupConvPasses passes{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0};
      const bool bias = bits % 2 == 0 || bits == 7;
      SCOPED_TRACE(gct::describe(c) + " passes " + std::to_string(bits) +
                   (bias ? " with bias" : ""));
      const auto ref = gct::run(c, false, bias);
      const auto ours = gct::run(c, true, bias, passes);
      EXPECT_LT(gct::relativeError(ours.y, ref.y), 1e-5);
      EXPECT_LT(gct::relativeError(ours.dx, ref.dx), 1e-5);
      EXPECT_LT(gct::relativeError(ours.dw, ref.dw), 1e-5);
      if (bias) {
        EXPECT_LT(gct::relativeError(ours.db, ref.db), 1e-5);
      }
    }
  }
  const auto x = torch::randn({1, 32, 8, 8});
  const auto w = torch::randn({32, 4, 3, 3});
  EXPECT_THROW(groupConv3x3(x, w, 1, 1, 8, torch::randn({16})), std::exception);  // wrong size
}

// The node without autograd (the inference form: InferenceMode; evaluation: no-grad), our forward
// with a folded BatchNorm's bias, channels-last and NCHW.
TEST(GroupConv, ForwardWithBiasWithoutAutograd) {
  for (const bool channels_last : {true, false}) {
    SCOPED_TRACE(channels_last ? "channels-last" : "NCHW");
    torch::manual_seed(9);
    const auto format =
        channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    const auto x = torch::randn({2, 64, 9, 9}).contiguous(format);
    const auto w = torch::randn({64, 8, 3, 3}) * 0.3;
    const auto b = torch::randn({64});
    const auto ref = torch::conv2d(x, w, b, 1, 2, 2, 8);
    const GroupConvPasses forward_only{true, false, false};
    {
      c10::InferenceMode inference;
      const auto y = groupConv3x3(x, w, 1, 2, 8, b, forward_only);
      EXPECT_TRUE(y.is_inference());
      EXPECT_TRUE(y.is_contiguous(format));
      EXPECT_LT(gct::relativeError(y, ref), 1e-5);
    }
    {
      torch::NoGradGuard no_grad;
      const auto y = groupConv3x3(x, w.clone().requires_grad_(), 1, 2, 8, b, forward_only);
      EXPECT_FALSE(y.requires_grad());
      EXPECT_LT(gct::relativeError(y, ref), 1e-5);
    }
  }
}

TEST(GroupConv, InferenceEpilogueAppliesBiasAndSharedPrelu) {
  // The inference form's forward: bias and PReLU (one shared slope) in the kernel's epilogue,
  // against LibTorch's convolution followed by its PReLU, on every ISA copy and test shape.
  for (const auto& isa : gct::isas()) {
    setGroupConvIsa(isa);
    for (const auto& c : gct::cases()) {
      SCOPED_TRACE(isa + " " + gct::describe(c));
      torch::manual_seed(21);
      const auto format =
          c.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
      const auto x = torch::randn({c.n, c.c, c.h, c.w}).contiguous(format);
      const auto w = torch::randn({c.c, c.k, 3, 3}) * 0.3;
      const auto b = torch::randn({c.c});
      const auto slope = torch::full({1}, 0.2);
      const int64_t groups = c.c / c.k;
      const auto conv = torch::conv2d(x, w, b, c.stride, c.dilation, c.dilation, groups);
      c10::InferenceMode inference;
      const auto y = groupConv3x3Inference(x, w, c.stride, c.dilation, groups, b, slope);
      EXPECT_TRUE(y.is_contiguous(format));
      EXPECT_LT(gct::relativeError(y, torch::prelu(conv, slope)), 1e-5);
      // Without the slope: the bias alone; without either: the plain convolution.
      EXPECT_LT(
          gct::relativeError(groupConv3x3Inference(x, w, c.stride, c.dilation, groups, b), conv),
          1e-5);
      EXPECT_LT(
          gct::relativeError(groupConv3x3Inference(x, w, c.stride, c.dilation, groups),
                             torch::conv2d(x, w, {}, c.stride, c.dilation, c.dilation, groups)),
          1e-5);
    }
  }
  setGroupConvIsa("");
  // What it refuses: a slope per channel, and a gradient wanted.
  const auto x = torch::randn({1, 32, 7, 7});
  const auto w = torch::randn({32, 4, 3, 3});
  EXPECT_THROW(groupConv3x3Inference(x, w, 1, 1, 8, {}, torch::full({32}, 0.25)), msconv::Error);
  EXPECT_THROW(groupConv3x3Inference(x.clone().requires_grad_(), w, 1, 1, 8), msconv::Error);
}

TEST(GroupConv, SameResultOnOneAndTwoThreads) {
  const int threads = at::get_num_threads();
  const gct::ConvCase c{2, 64, 8, 14, 14, 1, 2, true};
  at::set_num_threads(1);
  const auto one = gct::run(c, true);
  at::set_num_threads(2);
  const auto two = gct::run(c, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one.y, two.y));
  EXPECT_TRUE(torch::equal(one.dx, two.dx));
  EXPECT_TRUE(torch::equal(one.dw, two.dw));
}

TEST(GroupConv, SupportedShapes) {
  const auto x = torch::randn({1, 32, 8, 8});
  const auto w = torch::randn({32, 4, 3, 3});
  EXPECT_TRUE(groupConvSupported(x, w, false, {3, 3}, {1, 1}, {2, 2}, {2, 2}, 8));
  EXPECT_TRUE(groupConvSupported(x, w, true, {3, 3}, {1, 1}, {2, 2}, {2, 2}, 8));    // bias
  EXPECT_FALSE(groupConvSupported(x, w, false, {3, 3}, {1, 1}, {1, 1}, {2, 2}, 8));  // padding
  EXPECT_FALSE(groupConvSupported(x, w, false, {3, 3}, {3, 3}, {1, 1}, {1, 1}, 8));  // stride
  EXPECT_FALSE(groupConvSupported(x, w, false, {3, 3}, {1, 1}, {4, 4}, {4, 4}, 8));  // dilation
  EXPECT_FALSE(groupConvSupported(x.to(torch::kDouble), w.to(torch::kDouble), false, {3, 3}, {1, 1},
                                  {1, 1}, {1, 1}, 8));
  const auto w5 = torch::randn({32, 4, 5, 5});
  EXPECT_FALSE(groupConvSupported(x, w5, false, {5, 5}, {1, 1}, {1, 1}, {1, 1}, 8));
  // 2 channels per group: too few for a vector's group lanes.
  EXPECT_FALSE(groupConvSupported(x, torch::randn({32, 2, 3, 3}), false, {3, 3}, {1, 1}, {1, 1},
                                  {1, 1}, 16));
  EXPECT_THROW(groupConv3x3(x, w, 3, 1, 8), std::exception);
}

TEST(GroupConv, LibtorchOnlyGivesLibtorchsResultExactly) {
  torch::manual_seed(3);
  CountedConv2d conv(
      torch::nn::Conv2dOptions(64, 64, 3).padding(2).dilation(2).groups(16).bias(false));
  const auto x = torch::randn({2, 64, 9, 9});
  const auto ref = torch::conv2d(x, conv->weight, {}, 1, 2, 2, 16);
  setLibtorchKernelsOnly(true);
  const size_t before = groupConvDecisionCount();
  const auto y = conv->forward(x);
  EXPECT_EQ(groupConvDecisionCount(), before);  // not even measured
  setLibtorchKernelsOnly(false);
  EXPECT_TRUE(torch::equal(y, ref));
}

TEST(GroupConv, OneCachedDecisionPerShape) {
  clearGroupConvDecisions();
  torch::manual_seed(5);
  CountedConv2d conv(
      torch::nn::Conv2dOptions(32, 32, 3).padding(1).dilation(1).groups(4).bias(false));
  const auto x = torch::randn({2, 32, 10, 10}, torch::requires_grad());
  const auto ref = torch::conv2d(x, conv->weight, {}, 1, 1, 1, 4);
  const auto y = conv->forward(x);
  EXPECT_EQ(groupConvDecisionCount(), 1u);
  EXPECT_LT(gct::relativeError(y, ref), 1e-5);  // whichever was chosen
  const bool first = groupConvChosen(x, conv->weight, false, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 4);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(groupConvChosen(x, conv->weight, false, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 4), first);
    conv->forward(x).sum().backward();
  }
  EXPECT_EQ(groupConvDecisionCount(), 1u);
  // Another batch size is another shape; an unsupported one is never measured.
  conv->forward(torch::randn({1, 32, 10, 10}));
  EXPECT_EQ(groupConvDecisionCount(), 2u);
  CountedConv2d unsupported(torch::nn::Conv2dOptions(32, 32, 3).padding(2).groups(4).bias(false));
  unsupported->forward(x);
  EXPECT_EQ(groupConvDecisionCount(), 2u);
  // Without gradients (inference) the same shape is another decision: the forward alone is timed.
  {
    torch::NoGradGuard no_grad;
    EXPECT_LT(gct::relativeError(conv->forward(x), ref), 1e-5);
  }
  EXPECT_EQ(groupConvDecisionCount(), 3u);
  {
    c10::InferenceMode inference;
    const auto plan = groupConvPlan(x, conv->weight, false, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 4);
    EXPECT_EQ(groupConvDecisionCount(), 3u);  // the no-grad decision, cached
    if (plan) {  // only the forward was timed: no gradient pass is ours
      EXPECT_FALSE(plan->grad_input);
      EXPECT_FALSE(plan->grad_weight);
    }
  }
  // A bias is part of the shape's key: another decision.
  CountedConv2d biased(torch::nn::Conv2dOptions(32, 32, 3).padding(1).groups(4).bias(true));
  biased->forward(x);
  EXPECT_EQ(groupConvDecisionCount(), 4u);
  clearGroupConvDecisions();
  EXPECT_EQ(groupConvDecisionCount(), 0u);
}

TEST(GroupConv, DecidingLeavesTheGlobalRandomStreamAlone) {
  clearGroupConvDecisions();
  CountedConv2d conv(
      torch::nn::Conv2dOptions(64, 64, 3).padding(2).dilation(2).groups(8).bias(false));
  const auto x = torch::randn({1, 64, 6, 6});
  torch::manual_seed(11);
  const auto expected = torch::randn({8});
  torch::manual_seed(11);
  conv->forward(x);  // a new shape: both convolutions are timed on random inputs
  EXPECT_EQ(groupConvDecisionCount(), 1u);
  EXPECT_TRUE(torch::equal(torch::randn({8}), expected));
  clearGroupConvDecisions();
}
