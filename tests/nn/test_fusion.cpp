// The fused MSConv stage against the same stage composed of tensor operations: outputs, input
// gradients and the gate network's parameter gradients, NCHW and channels-last, odd sizes, both
// difference terms; and the MSConv operators agreeing with the fused stage switched on and off.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "msconv/nn/fusion.h"
#include "msconv/nn/operators.h"
#include "msconv/nn/spec.h"

using namespace msconv::nn;

namespace {

double relErr(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

struct Case {
  int64_t n, c, h, w;
  bool channels_last, diff_add;
};

}  // namespace

TEST(Fusion, FusedEqualsComposedForwardAndBackward) {
  const std::vector<Case> cases = {{2, 8, 7, 5, false, false},    {3, 16, 9, 9, true, false},
                                   {1, 5, 13, 3, false, true},    {4, 24, 6, 11, true, true},
                                   {2, 64, 28, 28, false, false}, {2, 33, 14, 14, true, false},
                                   {1, 3, 1, 1, false, false}};
  for (const auto& k : cases) {
    SCOPED_TRACE(std::to_string(k.n) + "x" + std::to_string(k.c) + "x" + std::to_string(k.h) + "x" +
                 std::to_string(k.w) + (k.channels_last ? " NHWC" : " NCHW") +
                 (k.diff_add ? " add" : " sub"));
    torch::manual_seed(k.c * 31 + k.h);
    auto fc1 = torch::nn::Linear(k.c, 4), fc2 = torch::nn::Linear(4, k.c);
    const GateFn gate = [&](const torch::Tensor& s) {
      return torch::sigmoid(fc2->forward(torch::relu(fc1->forward(s.flatten(1)))))
          .view({s.size(0), s.size(1), 1, 1});
    };
    auto mf = k.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    const auto u1 = torch::randn({k.n, k.c, k.h, k.w}).contiguous(mf);
    const auto u2 = torch::randn({k.n, k.c, k.h, k.w}).contiguous(mf);
    const auto dv = torch::randn({k.n, k.c, k.h, k.w});
    auto run = [&](bool fused) {
      auto a = u1.clone().requires_grad_(true), b = u2.clone().requires_grad_(true);
      for (auto& p : fc1->parameters()) p.mutable_grad() = torch::Tensor();
      for (auto& p : fc2->parameters()) p.mutable_grad() = torch::Tensor();
      const auto r =
          fused ? fusedMsFusion(a, b, gate, k.diff_add) : composedMsFusion(a, b, gate, k.diff_add);
      r.v.backward(dv);
      std::vector<torch::Tensor> out = {r.v.detach(), r.s, r.c, a.grad(), b.grad()};
      for (auto& p : fc1->parameters()) out.push_back(p.grad().clone());
      for (auto& p : fc2->parameters()) out.push_back(p.grad().clone());
      return out;
    };
    const auto want = run(false), got = run(true);
    ASSERT_EQ(want.size(), got.size());
    const char* names[] = {"V", "s", "c", "dU1", "dU2", "fc1.w", "fc1.b", "fc2.w", "fc2.b"};
    for (size_t i = 0; i < want.size(); ++i) EXPECT_LT(relErr(got[i], want[i]), 1e-5) << names[i];
    if (k.channels_last) {
      EXPECT_TRUE(got[0].is_contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
}

TEST(Fusion, NoGradPathAndRawKernels) {
  torch::manual_seed(3);
  const auto u1 = torch::randn({2, 6, 5, 7}), u2 = torch::randn({2, 6, 5, 7});
  const auto s = fusionPool(u1, u2);
  EXPECT_LT(relErr(s, (u1 * u2).mean({2, 3}, true)), 1e-6);
  const auto c = torch::rand({2, 6, 1, 1});
  EXPECT_LT(relErr(fusionMix(u1, u2, c, false), u2 + c * (u1 - u2)), 1e-6);
  torch::NoGradGuard no_grad;
  const GateFn gate = [](const torch::Tensor& x) { return torch::sigmoid(x * 3); };
  const auto r = fusedMsFusion(u1, u2, gate, false);
  EXPECT_LT(relErr(r.v, composedMsFusion(u1, u2, gate, false).v), 1e-6);
  // A layout the kernels do not take falls back to the composed form.
  const auto strided = torch::randn({2, 6, 5, 14}).narrow(3, 0, 7);
  EXPECT_LT(relErr(fusedMsFusion(strided, u2, gate, false).v,
                   composedMsFusion(strided, u2, gate, false).v),
            1e-6);
}

TEST(Fusion, MSConvOperatorsAgreeWithTheFusedStageOnAndOff) {
  for (const auto slopes : {PReluSlopes::kPerChannel, PReluSlopes::kShared})
    for (const std::string op : {"msconv", "msconv-official", "msconv:diff=add", "msconv-mo"}) {
      SCOPED_TRACE(op + (slopes == PReluSlopes::kShared ? " (shared slopes)" : ""));
      const auto x = torch::randn({4, 32, 15, 15});
      std::vector<std::vector<torch::Tensor>> res;
      for (bool fused : {false, true}) {
        setFusedFusion(fused);
        torch::manual_seed(11);
        OpContext ctx{32, 2, 16};
        ctx.prelu = slopes;
        auto clone = makeOperator(parseOpSpec(op), ctx);
        clone->train();
        auto in = x.clone().requires_grad_(true);
        const auto y = clone->forward(in, nullptr, "op");
        y.pow(2).sum().backward();
        std::vector<torch::Tensor> r = {y.detach(), in.grad()};
        for (auto& p : clone->parameters()) r.push_back(p.grad().clone());
        for (auto& b : clone->buffers()) r.push_back(b.clone());  // BN running stats move once
        res.push_back(r);
      }
      setFusedFusion(true);
      ASSERT_EQ(res[0].size(), res[1].size());
      for (size_t i = 0; i < res[0].size(); ++i) {
        // A shared slope's gradient is one sum of every element's signed share, where float
        // rounding of the two forms' gate gradients (1e-6 relative) cancels less: 1e-3 there.
        const double tol = res[0][i].numel() == 1 ? 1e-3 : 1e-4;
        EXPECT_LT(relErr(res[1][i].to(torch::kFloat), res[0][i].to(torch::kFloat)), tol) << i;
      }
    }
}
