// The fused BatchNorm (training) + activation node against LibTorch's composition
// (torch::batch_norm in training, then torch::prelu / torch::relu / nothing): outputs, the
// gradients of x, gamma, beta and the slope, and the running statistics over several steps, for
// NCHW and channels-last, odd shapes, momentum set and None; the module-level wiring (which
// stacks take the fused node and which keep their own path); and whole backbones training the
// same with the hand-written kernels as with LibTorch's alone.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>
#include <string>
#include <vector>

#include "msconv/nn/backbone.h"
#include "msconv/nn/bn_prelu.h"
#include "msconv/nn/kernel_switch.h"
#include "msconv/nn/layers.h"

using namespace msconv::nn;

namespace {

double bnRelErr(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

bool bnFusedNode(const torch::Tensor& y) {
  return y.grad_fn() && y.grad_fn()->name().find("BnActFunction") != std::string::npos;
}

enum class BnSlope { kShared, kChannel, kReLU, kNone };

struct BnCase {
  int64_t n, c, h, w;  // h = w = 0: a 2-d N x C input
  bool channels_last;
  BnSlope slope;
  bool momentum_none;
};

std::string bnDescribe(const BnCase& k) {
  const char* slope[] = {"shared", "per-channel", "relu", "none"};
  return std::to_string(k.n) + "x" + std::to_string(k.c) + "x" + std::to_string(k.h) + "x" +
         std::to_string(k.w) + (k.channels_last ? " NHWC " : " NCHW ") +
         slope[static_cast<int>(k.slope)] + (k.momentum_none ? " momentum=None" : " momentum=0.1");
}

// LibTorch's own composition, as torch::nn::BatchNorm's forward runs it.
torch::Tensor bnReference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                          const torch::Tensor& rm, const torch::Tensor& rv, torch::Tensor& nbt,
                          const BnCase& k, const torch::Tensor& slope) {
  double factor = 0.1;
  {
    torch::NoGradGuard no_grad;
    nbt += 1;
    if (k.momentum_none) factor = 1.0 / nbt.item<double>();
  }
  const auto z = torch::batch_norm(x, w, b, rm, rv, true, factor, 1e-5, false);
  if (k.slope == BnSlope::kReLU) return torch::relu(z);
  if (k.slope == BnSlope::kNone) return z;
  return torch::prelu(z, slope);
}

}  // namespace

TEST(BnPrelu, MatchesLibtorchCompositionOverSteps) {
  const std::vector<BnCase> cases = {{3, 5, 7, 9, false, BnSlope::kShared, false},
                                     {3, 5, 7, 9, true, BnSlope::kShared, true},
                                     {2, 7, 5, 3, false, BnSlope::kChannel, true},
                                     {4, 6, 3, 5, true, BnSlope::kChannel, false},
                                     {5, 3, 1, 1, false, BnSlope::kShared, false},
                                     {6, 9, 1, 1, true, BnSlope::kChannel, true},
                                     {2, 13, 11, 4, false, BnSlope::kReLU, false},
                                     {3, 11, 4, 6, true, BnSlope::kNone, true},
                                     {7, 10, 0, 0, false, BnSlope::kChannel, false},
                                     {2, 16, 70, 70, false, BnSlope::kShared, true},
                                     {2, 40, 17, 19, true, BnSlope::kShared, false},
                                     {1, 4, 3, 1, false, BnSlope::kNone, false}};
  for (const auto& k : cases) {
    SCOPED_TRACE(bnDescribe(k));
    torch::manual_seed(k.c * 7 + k.h);
    const int64_t C = k.c;
    const auto w0 = torch::rand({C}) + 0.5, b0 = torch::randn({C}) * 0.3;
    const auto slope0 =
        k.slope == BnSlope::kChannel ? torch::rand({C}) * 0.5 : torch::full({1}, 0.25);
    auto wA = w0.clone().requires_grad_(true), bA = b0.clone().requires_grad_(true);
    auto aA = slope0.clone().requires_grad_(true);
    auto wB = w0.clone().requires_grad_(true), bB = b0.clone().requires_grad_(true);
    auto aB = slope0.clone().requires_grad_(true);
    auto rmA = torch::randn({C}) * 0.1, rvA = torch::rand({C}) + 0.5;
    auto rmB = rmA.clone(), rvB = rvA.clone();
    auto nbtA = torch::zeros({}, torch::kLong), nbtB = torch::zeros({}, torch::kLong);
    const BnAct act = k.slope == BnSlope::kReLU   ? BnAct::kReLU
                      : k.slope == BnSlope::kNone ? BnAct::kNone
                                                  : BnAct::kPReLU;
    for (int step = 0; step < 3; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      // Inputs off-centre (mean 3, spread 2 per channel) to exercise the variance's accuracy.
      auto x = k.h == 0 ? torch::randn({k.n, C}) : torch::randn({k.n, C, k.h, k.w});
      x = (x * 2 + 3 +
           torch::arange(C)
               .to(torch::kFloat)
               .view(k.h == 0 ? std::vector<int64_t>{1, C} : std::vector<int64_t>{1, C, 1, 1}))
              .detach();
      if (k.channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      const auto xA = x.clone().requires_grad_(true), xB = x.clone().requires_grad_(true);
      nbtA += 1;
      const double factor = k.momentum_none ? 1.0 / nbtA.item<double>() : 0.1;
      const auto yA = bnActTrain(xA, wA, bA, rmA, rvA, act, aA, factor, 1e-5);
      const auto yB = bnReference(xB, wB, bB, rmB, rvB, nbtB, k, aB);
      ASSERT_TRUE(bnFusedNode(yA));
      EXPECT_LT(bnRelErr(yA, yB), 1e-5);
      EXPECT_LT(bnRelErr(rmA, rmB), 1e-6);
      EXPECT_LT(bnRelErr(rvA, rvB), 1e-5);
      const auto g = torch::randn_like(yB);
      yA.backward(g);
      yB.backward(g);
      EXPECT_LT(bnRelErr(xA.grad(), xB.grad()), 1e-4);
      EXPECT_LT(bnRelErr(wA.grad(), wB.grad()), 1e-4);
      EXPECT_LT(bnRelErr(bA.grad(), bB.grad()), 1e-5);
      if (act == BnAct::kPReLU) {
        EXPECT_LT(bnRelErr(aA.grad(), aB.grad()), 1e-4);
      } else {
        EXPECT_FALSE(aA.grad().defined());
      }
      for (auto* t : {&wA, &bA, &aA, &wB, &bB, &aB}) t->mutable_grad() = torch::Tensor();
    }
  }
}

// Each gradient only as required: a frozen gamma gets none, the others are still right.
TEST(BnPrelu, RespectsRequiresGrad) {
  torch::manual_seed(3);
  const int64_t C = 6;
  const auto x = torch::randn({4, C, 5, 5}), g = torch::randn({4, C, 5, 5});
  const auto w = torch::rand({C}) + 0.5, b = torch::randn({C});
  auto a = torch::full({1}, 0.2).requires_grad_(true), aB = a.detach().clone().requires_grad_(true);
  auto bA = b.clone().requires_grad_(true), bB = b.clone().requires_grad_(true);
  const auto xA = x.clone().requires_grad_(true);
  const auto y =
      bnActTrain(xA, w, bA, torch::zeros({C}), torch::ones({C}), BnAct::kPReLU, a, 0.1, 1e-5);
  y.backward(g);
  const auto xB = x.clone().requires_grad_(true);
  torch::prelu(
      torch::batch_norm(xB, w, bB, torch::zeros({C}), torch::ones({C}), true, 0.1, 1e-5, false), aB)
      .backward(g);
  EXPECT_FALSE(w.grad().defined());
  EXPECT_LT(bnRelErr(xA.grad(), xB.grad()), 1e-4);
  EXPECT_LT(bnRelErr(bA.grad(), bB.grad()), 1e-5);
  EXPECT_LT(bnRelErr(a.grad(), aB.grad()), 1e-4);
  // Only the slope: no input gradient computed, the slope's still right.
  const auto x2 = x.clone();
  auto a2 = torch::full({1}, 0.2).requires_grad_(true);
  bnActTrain(x2, w, b, torch::zeros({C}), torch::ones({C}), BnAct::kPReLU, a2, 0.1, 1e-5)
      .backward(g);
  EXPECT_LT(bnRelErr(a2.grad(), aB.grad()), 1e-4);
}

// The reductions run in a fixed order: one thread and two give the same bits.
TEST(BnPrelu, SameResultOnAnyThreadCount) {
  const int before = at::get_num_threads();
  torch::manual_seed(5);
  for (bool channels_last : {false, true}) {
    auto x = torch::randn({8, 24, 20, 20}) * 3 + 1;
    if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    const auto g = torch::randn({8, 24, 20, 20});
    std::vector<torch::Tensor> out[2];
    for (int t = 0; t < 2; ++t) {
      at::set_num_threads(t + 1);
      auto xi = x.clone().requires_grad_(true);
      auto w = torch::ones({24}).requires_grad_(true), b = torch::zeros({24}).requires_grad_(true);
      auto a = torch::full({1}, 0.25).requires_grad_(true);
      auto rm = torch::zeros({24}), rv = torch::ones({24});
      const auto y = bnActTrain(xi, w, b, rm, rv, BnAct::kPReLU, a, 0.1, 1e-5);
      y.backward(g);
      out[t] = {y, xi.grad(), w.grad(), b.grad(), a.grad(), rm, rv};
    }
    for (size_t i = 0; i < out[0].size(); ++i) EXPECT_TRUE(torch::equal(out[0][i], out[1][i])) << i;
  }
  at::set_num_threads(before);
}

namespace {

struct BnNoopSync : BatchSync {
  void allReduceSum(std::vector<at::Tensor>&) override {}
};

}  // namespace

// The modules: convBnAct stacks and BN + PReLU pairs take the fused node in training (counting
// the batch and updating the running statistics as LibTorch's BatchNorm does, momentum None
// included); eval mode, a cross-rank sync, MSCONV_KERNELS=libtorch or the fusion switched off keep
// the modules' own path.
TEST(BnPrelu, ModuleWiring) {
  for (Act act : {Act::kPReLUShared, Act::kPReLUChannel, Act::kReLU, Act::kNone}) {
    SCOPED_TRACE(static_cast<int>(act));
    torch::manual_seed(11);
    auto fused = convBnAct({4, 6, 3, 1, 1}, act), plain = convBnAct({4, 6, 3, 1, 1}, act);
    {
      torch::NoGradGuard no_grad;
      const auto src = fused->named_parameters();
      for (auto& p : plain->named_parameters()) p.value().copy_(src[p.key()]);
    }
    auto* bn = fused[1]->as<BatchNorm2dImpl>();
    auto* bn_plain = plain[1]->as<BatchNorm2dImpl>();
    bn->options.momentum(c10::nullopt);
    bn_plain->options.momentum(c10::nullopt);
    for (int step = 0; step < 3; ++step) {
      const auto x = torch::randn({3, 4, 6, 5});
      const auto y = forwardConvBnAct(fused, x);
      const auto y_plain = plain->forward(x);
      EXPECT_TRUE(bnFusedNode(y));
      EXPECT_LT(bnRelErr(y, y_plain), 1e-5);
      const auto g = torch::randn_like(y);
      y.backward(g);
      y_plain.backward(g);
    }
    EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 3);
    EXPECT_LT(bnRelErr(bn->running_mean, bn_plain->running_mean), 1e-6);
    EXPECT_LT(bnRelErr(bn->running_var, bn_plain->running_var), 1e-5);
    const auto grads = plain->named_parameters();
    for (const auto& p : fused->named_parameters())
      EXPECT_LT(bnRelErr(p.value().grad(), grads[p.key()].grad()), 1e-4) << p.key();

    const auto x = torch::randn({3, 4, 6, 5});
    fused->eval();
    EXPECT_FALSE(bnFusedNode(forwardConvBnAct(fused, x)));
    fused->train();
    bn->sync = std::make_shared<BnNoopSync>();
    EXPECT_FALSE(bnFusedNode(forwardConvBnAct(fused, x)));
    bn->sync = nullptr;
    setLibtorchKernelsOnly(true);
    EXPECT_FALSE(bnFusedNode(forwardConvBnAct(fused, x)));
    setLibtorchKernelsOnly(false);
    setBnActFusion(false);
    EXPECT_FALSE(bnFusedNode(forwardConvBnAct(fused, x)));
    setBnActFusion(true);
    EXPECT_TRUE(bnFusedNode(forwardConvBnAct(fused, x)));
  }
  // A BN + PReLU pair (iResNet's): the fused node for NCHW input; channels-last input keeps the
  // modules' path (slower fused, as measured). The same values and statistics either way.
  torch::manual_seed(12);
  BatchNorm2d bn(8), bn_plain(8);
  PReLU prelu(8), prelu_plain(8);
  for (bool channels_last : {false, true}) {
    SCOPED_TRACE(channels_last ? "channels-last" : "NCHW");
    auto x = torch::randn({2, 8, 5, 7});
    if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    const auto y = forwardBnAct(*bn, prelu.get(), x);
    EXPECT_EQ(bnFusedNode(y), !channels_last);
    EXPECT_LT(bnRelErr(y, torch::prelu(bn_plain->forward(x), prelu_plain->weight)), 1e-5);
    EXPECT_LT(bnRelErr(bn->running_var, bn_plain->running_var), 1e-5);
    EXPECT_LT(bnRelErr(bn->running_mean, bn_plain->running_mean), 1e-5);
  }
  // One value per channel: LibTorch's own error, from its own path.
  EXPECT_THROW(forwardBnAct(*bn, prelu.get(), torch::randn({1, 8, 1, 1})), c10::Error);
}

namespace {

// One training step's loss and parameter gradients (and the BN running statistics after it).
struct BnStepResult {
  double loss;
  int fused_nodes;  // BnActFunction nodes in the step's graph
  std::vector<std::pair<std::string, torch::Tensor>> grads, buffers;
};

BnStepResult bnTrainStep(BackboneImpl& model, const BnStepResult& init, bool libtorch_only,
                         int64_t side) {
  {
    torch::NoGradGuard no_grad;
    size_t i = 0;
    for (auto& p : model.named_parameters()) p.value().copy_(init.grads[i++].second);
    i = 0;
    for (auto& b : model.named_buffers()) b.value().copy_(init.buffers[i++].second);
  }
  model.zero_grad();
  setLibtorchKernelsOnly(libtorch_only);
  torch::manual_seed(22);
  const auto x = torch::randn({4, 3, side, side});
  const auto target = torch::randn({4, model.embeddingDim()});
  const auto emb = model.forward(x, nullptr);
  const auto loss = (emb - target).pow(2).mean();
  loss.backward();
  setLibtorchKernelsOnly(false);
  BnStepResult r{loss.item<double>(), 0, {}, {}};
  std::vector<torch::autograd::Node*> todo{loss.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  while (!todo.empty()) {
    auto* node = todo.back();
    todo.pop_back();
    if (!node || !seen.insert(node).second) continue;
    r.fused_nodes += node->name().find("BnActFunction") != std::string::npos;
    for (const auto& e : node->next_edges()) todo.push_back(e.function.get());
  }
  for (const auto& p : model.named_parameters())
    if (p.value().grad().defined()) r.grads.emplace_back(p.key(), p.value().grad().clone());
  for (const auto& b : model.named_buffers()) r.buffers.emplace_back(b.key(), b.value().clone());
  return r;
}

}  // namespace

TEST(BnPrelu, BackbonesTrainAsWithLibtorchKernels) {
  for (const auto& [arch, side] :
       std::vector<std::pair<std::string, int64_t>>{{"msnet-tiny", 64}, {"iresnet-tiny", 112}}) {
    SCOPED_TRACE(arch);
    torch::manual_seed(21);
    auto model = makeBackbone(arch, "msconv-official");
    model->train();
    // The initial state (parameters in `grads`' place), restored before each run.
    BnStepResult init{0, 0, {}, {}};
    for (const auto& p : model->named_parameters())
      init.grads.emplace_back(p.key(), p.value().detach().clone());
    for (const auto& b : model->named_buffers())
      init.buffers.emplace_back(b.key(), b.value().clone());
    const auto ours = bnTrainStep(*model, init, false, side);
    const auto ref = bnTrainStep(*model, init, true, side);
    EXPECT_GT(ours.fused_nodes, 10);
    EXPECT_EQ(ref.fused_nodes, 0);
    EXPECT_NEAR(ours.loss, ref.loss, 1e-4 * std::abs(ref.loss));
    ASSERT_EQ(ours.grads.size(), ref.grads.size());
    ASSERT_GT(ours.grads.size(), 10u);
    // Gradients that are zero up to rounding (a BN's bias feeding only later BatchNorms, which
    // cancel any per-channel shift) are compared against the model's gradient scale instead.
    double scale = 0;
    for (const auto& g : ref.grads) scale = std::max(scale, g.second.abs().max().item<double>());
    for (size_t i = 0; i < ours.grads.size(); ++i) {
      ASSERT_EQ(ours.grads[i].first, ref.grads[i].first);
      const auto& a = ours.grads[i].second;
      const auto& b = ref.grads[i].second;
      EXPECT_LE((a - b).abs().max().item<double>(),
                2e-3 * b.abs().max().item<double>() + 1e-5 * scale)
          << ours.grads[i].first;
    }
    ASSERT_EQ(ours.buffers.size(), ref.buffers.size());
    // Running statistics (and batch counts): a running mean can be zero up to rounding too (the
    // mean of a BN's output with zero bias), hence the absolute part.
    for (size_t i = 0; i < ours.buffers.size(); ++i) {
      const auto a = ours.buffers[i].second.to(torch::kDouble);
      const auto b = ref.buffers[i].second.to(torch::kDouble);
      EXPECT_LE((a - b).abs().max().item<double>(), 1e-4 * b.abs().max().item<double>() + 1e-6)
          << ours.buffers[i].first;
    }
  }
}
