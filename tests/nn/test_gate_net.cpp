// The fused gate network (nn/gate_net.h) against the same modules run by LibTorch alone
// (setLibtorchKernelsOnly): the gate, the gradients of s and of every parameter, the running
// statistics and the batch count, for the authors' gate (conv + BN + PReLU, shared or per-channel
// slope, eps 1e-6) and the paper's (conv + BN + ReLU, heads with a bias and nothing after);
// and what it refuses.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "msconv/nn/gate_net.h"
#include "msconv/nn/kernel_switch.h"
#include "msconv/nn/layers.h"
#include "msconv/nn/operators.h"
#include "msconv/nn/spec.h"

using namespace msconv::nn;

namespace gate_test {

double gateRelErr(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

enum class Kind { kOfficialShared, kOfficialChannel, kPaper };

struct Gate {
  torch::nn::Sequential fc{nullptr};
  std::shared_ptr<torch::nn::Module> heads[2];
  double eps = 0;
  std::vector<torch::nn::Module*> modules() { return {fc.get(), heads[0].get(), heads[1].get()}; }
};

Gate makeGate(Kind kind, int C, int d) {
  Gate g;
  const Act act = kind == Kind::kOfficialShared    ? Act::kPReLUShared
                  : kind == Kind::kOfficialChannel ? Act::kPReLUChannel
                                                   : Act::kReLU;
  g.fc = convBnAct({C, d, 1}, act);
  for (auto& h : g.heads) {
    if (kind == Kind::kPaper) {
      ConvOpts o{d, C, 1};
      o.bias = true;
      h = makeConv(o).ptr();
    } else {
      h = convBnAct({d, C, 1}, act).ptr();
    }
  }
  g.eps = kind == Kind::kPaper ? 0.0 : 1e-6;
  // Slopes and BN parameters away from their initial values, so that their roles show.
  torch::NoGradGuard no_grad;
  for (auto* m : g.modules())
    for (auto& p : m->named_parameters()) {
      if (p.key().find("2.weight") != std::string::npos) p.value().uniform_(0.05, 0.5);
      if (p.key() == "1.weight") p.value().uniform_(0.5, 1.5);
      if (p.key() == "1.bias") p.value().uniform_(-0.3, 0.3);
    }
  return g;
}

torch::Tensor composed(Gate& g, const torch::Tensor& s) {
  auto run = [](const std::shared_ptr<torch::nn::Module>& m, const torch::Tensor& x) {
    if (auto* seq = dynamic_cast<torch::nn::SequentialImpl*>(m.get())) return seq->forward(x);
    return m->as<CountedConv2dImpl>()->forward(x);
  };
  const auto z = g.fc->forward(s);
  auto logit = run(g.heads[0], z) - run(g.heads[1], z);
  if (g.eps != 0) logit = logit + g.eps;
  return torch::sigmoid(logit);
}

GateNet netOf(Gate& g) {
  return {gateLayer(g.fc.ptr()), gateLayer(g.heads[0]), gateLayer(g.heads[1]), g.eps};
}

}  // namespace gate_test

using namespace gate_test;

TEST(GateNet, FusedEqualsLibTorchModules) {
  struct Case {
    Kind kind;
    int64_t n;
    int c, d;
    bool cumulative = false;  // BatchNorm momentum None: the running statistics' plain average
  };
  // (Batches of 4 or more: at 2, BatchNorm's output is +-1 whatever the input, so the gradient
  // through it is rounding noise in both forms.)
  const std::vector<Case> cases = {{Kind::kOfficialShared, 16, 64, 32},
                                   {Kind::kOfficialChannel, 16, 64, 32},
                                   {Kind::kPaper, 16, 64, 32},
                                   {Kind::kOfficialShared, 3, 24, 8},
                                   {Kind::kOfficialChannel, 4, 40, 5},
                                   {Kind::kPaper, 5, 33, 7},
                                   {Kind::kOfficialChannel, 6, 48, 16, true}};
  for (const auto& k : cases) {
    SCOPED_TRACE("kind " + std::to_string(static_cast<int>(k.kind)) + ", " + std::to_string(k.n) +
                 " x " + std::to_string(k.c) + " -> " + std::to_string(k.d) +
                 (k.cumulative ? ", cumulative average" : ""));
    torch::manual_seed(k.c * 7 + k.d);
    const auto s = torch::randn({k.n, k.c, 1, 1}) * 2 + 0.5;
    const auto dc = torch::randn({k.n, k.c, 1, 1});
    auto run = [&](bool fused) {
      torch::manual_seed(5);
      Gate g = makeGate(k.kind, k.c, k.d);
      for (auto* m : g.modules()) {
        m->train();
        if (k.cumulative)
          for (auto& b : m->modules())
            if (auto* bn = dynamic_cast<BatchNorm2dImpl*>(b.get()))
              bn->options.momentum(c10::nullopt);
      }
      auto x = s.clone().requires_grad_(true);
      torch::Tensor c;
      // Two steps, so that the running statistics' update is seen twice.
      for (int step = 0; step < 2; ++step) {
        x.mutable_grad() = torch::Tensor();
        for (auto* m : g.modules())
          for (auto& p : m->parameters()) p.mutable_grad() = torch::Tensor();
        if (fused) {
          const GateNet net = netOf(g);
          EXPECT_TRUE(gateFusable(net, x));
          c = fusedGate(net, x);
          EXPECT_NE(c.grad_fn()->name().find("GateNetFunction"), std::string::npos);
        } else {
          setLibtorchKernelsOnly(true);
          c = composed(g, x);
          setLibtorchKernelsOnly(false);
        }
        c.backward(dc);
      }
      std::vector<std::pair<std::string, torch::Tensor>> out = {{"c", c.detach()},
                                                                {"ds", x.grad()}};
      const char* prefix[] = {"fc.", "head_a.", "head_b."};
      int i = 0;
      for (auto* m : g.modules()) {
        for (auto& p : m->named_parameters())
          out.emplace_back(prefix[i] + p.key() + ".grad", p.value().grad().clone());
        for (auto& b : m->named_buffers())
          out.emplace_back(prefix[i] + b.key(), b.value().to(torch::kFloat).clone());
        ++i;
      }
      return out;
    };
    const auto want = run(false), got = run(true);
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(want[i].first, got[i].first);
      ASSERT_TRUE(got[i].second.defined()) << got[i].first;
      EXPECT_EQ(want[i].second.sizes(), got[i].second.sizes()) << got[i].first;
      // A shared slope's gradient is one sum over every value, whose terms cancel: 1e-4 there.
      const double tol = got[i].second.numel() == 1 ? 1e-4 : 1e-5;
      EXPECT_LT(gateRelErr(got[i].second, want[i].second), tol) << got[i].first;
    }
  }
}

TEST(GateNet, RefusesWhatItDoesNotTake) {
  torch::manual_seed(1);
  Gate g = makeGate(Kind::kOfficialChannel, 16, 8);
  for (auto* m : g.modules()) m->train();
  const GateNet net = netOf(g);
  const auto s = torch::randn({4, 16, 1, 1});
  EXPECT_TRUE(gateFusable(net, s));
  EXPECT_FALSE(gateFusable(net, torch::randn({1, 16, 1, 1})));  // one sample: no batch statistics
  EXPECT_FALSE(gateFusable(net, torch::randn({4, 16, 2, 2})));  // not pooled
  EXPECT_FALSE(gateFusable(net, torch::randn({4, 12, 1, 1})));  // wrong width
  EXPECT_FALSE(gateFusable(net, s.to(torch::kDouble)));
  setLibtorchKernelsOnly(true);
  EXPECT_FALSE(gateFusable(net, s));
  setLibtorchKernelsOnly(false);
  g.heads[1]->eval();  // eval-mode BatchNorm uses running statistics: the modules' path
  EXPECT_FALSE(gateFusable(net, s));
  g.heads[1]->train();
  // Not a conv + BN + activation stack.
  GateNet odd = net;
  odd.head_b = gateLayer(torch::nn::Sequential(torch::nn::ReLU()).ptr());
  EXPECT_FALSE(gateFusable(odd, s));
  EXPECT_THROW(fusedGate(odd, s), c10::Error);
}

TEST(GateNet, TheMSConvOperatorsTakeItInTraining) {
  for (const std::string op : {"msconv-official", "msconv"}) {
    SCOPED_TRACE(op);
    torch::manual_seed(2);
    auto made = makeOperator(parseOpSpec(op), OpContext{32, 1, 16});
    auto* ms = dynamic_cast<MSConvImpl*>(made.get());
    ASSERT_NE(ms, nullptr);
    const auto s = torch::randn({4, 32, 1, 1}).requires_grad_(true);
    made->train();
    const auto fused = ms->gate(s, true), composed = ms->gate(s, false);
    EXPECT_NE(fused.grad_fn()->name().find("GateNetFunction"), std::string::npos);
    EXPECT_EQ(composed.grad_fn()->name().find("GateNetFunction"), std::string::npos);
    // Two calls in training move the running statistics twice; the gates still agree closely.
    EXPECT_LT(gateRelErr(fused.detach(), composed.detach()), 1e-5);
    made->eval();  // eval mode: the modules, with the running statistics
    EXPECT_EQ(ms->gate(s, true).grad_fn()->name().find("GateNetFunction"), std::string::npos);
  }
}
