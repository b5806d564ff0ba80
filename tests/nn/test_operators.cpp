// Operators against two independent references: the PyTorch modules of tests/python (run by
// Debian's python3-torch) and the same maths written here directly with tensor functions.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "msconv/error.h"
#include "msconv/nn/operators.h"
#include "test_util.h"

using namespace msconv;
using namespace msconv::nn;
using msconv::test::closeTo;

namespace {

Operator build(const std::string& spec, int channels, int stride, int groups = 32, int L = 32,
               PReluSlopes prelu = PReluSlopes::kShared, FrameAct act = FrameAct::kReLU) {
  OpContext ctx;
  ctx.channels = channels;
  ctx.stride = stride;
  ctx.default_groups = groups;
  ctx.default_min_dim = L;
  ctx.prelu = prelu;
  ctx.act = act;
  return makeOperator(parseOpSpec(spec), ctx);
}

void expectMatchesPyTorch(const nlohmann::json& c) {
  const std::string name = c["name"];
  SCOPED_TRACE(name + " (" + std::string(c["op"]) + ")");
  Operator op = build(c["op"], c["channels"], c["stride"], c["groups"], c["min_dim"],
                      c["prelu"] == "channel" ? PReluSlopes::kPerChannel : PReluSlopes::kShared,
                      c.value("act", "relu") == "gelu" ? FrameAct::kGELU : FrameAct::kReLU);
  const auto state = io::readTorchFile(test::fixtureDir() + "/" + name + "_state.pt");
  io::loadStateDict(*op, state, /*allow_partial=*/false, name);
  auto ref = test::readFixture(name + "_io.pt");
  op->train();
  torch::Tensor x = ref["x"].clone().requires_grad_(true);
  torch::Tensor y = op->forward(x);
  EXPECT_TRUE(closeTo(y, ref["y"])) << "output";
  (y * ref["g"]).sum().backward();
  EXPECT_TRUE(closeTo(x.grad(), ref["grad.x"])) << "input gradient";
  int compared = 0;
  for (const auto& p : op->named_parameters()) {
    ASSERT_TRUE(ref.count("grad." + p.key())) << "PyTorch has no gradient for " << p.key();
    const auto& want = ref["grad." + p.key()];
    if (want.abs().max().item<double>() < 1e-4) {
      // A bias right before training-mode BN (StarNet's convs have them) has no gradient in
      // exact arithmetic: on both sides it is rounding noise, so both must be near zero.
      EXPECT_LT(p.value().grad().abs().max().item<double>(), 1e-4) << "gradient of " << p.key();
    } else {
      EXPECT_TRUE(closeTo(p.value().grad(), want, 2e-4, 1e-5)) << "gradient of " << p.key();
    }
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

}  // namespace

TEST(OperatorsVsPyTorch, OutputsAndGradientsMatchTheReferenceModules) {
  std::ifstream f(test::fixtureDir() + "/manifest.json");
  ASSERT_TRUE(f) << "fixtures missing: run through ctest (python_reference_fixtures)";
  const auto manifest = nlohmann::json::parse(f);
  ASSERT_GE(manifest["ops"].size(), 8u);
  for (const auto& c : manifest["ops"]) expectMatchesPyTorch(c);
}

// ---- the same maths written directly with tensor functions ----------------------------------

namespace {

using Params = std::map<std::string, torch::Tensor>;

Params params(torch::nn::Module& m) {
  Params p;
  for (const auto& item : m.named_parameters()) p[item.key()] = item.value();
  for (const auto& item : m.named_buffers()) p[item.key()] = item.value();
  return p;
}

torch::Tensor bn(const torch::Tensor& x, Params& p, const std::string& prefix) {
  // Training-mode batch normalisation: batch statistics, biased variance, eps 1e-5.
  const auto mean = x.mean({0, 2, 3}, true);
  const auto var = (x - mean).pow(2).mean({0, 2, 3}, true);
  const auto w = p[prefix + ".weight"].view({1, -1, 1, 1});
  const auto b = p[prefix + ".bias"].view({1, -1, 1, 1});
  return (x - mean) / torch::sqrt(var + 1e-5) * w + b;
}

torch::Tensor preluRef(const torch::Tensor& x, const torch::Tensor& a) {
  return torch::where(x >= 0, x, x * a.view({1, -1, 1, 1}));
}

// conv (weight at prefix.0) + BN (prefix.1) + activation ("prelu": prefix.2, "relu", "").
torch::Tensor stack(const torch::Tensor& x, Params& p, const std::string& prefix, int stride,
                    int dil, int groups, const std::string& act) {
  const std::string at = prefix.empty() ? "" : prefix + ".";
  const auto w = p[at + "0.weight"];
  const int pad = w.size(-1) == 3 ? dil : 0;
  auto y = bn(torch::conv2d(x, w, {}, stride, pad, dil, groups), p, at + "1");
  if (act == "prelu") y = preluRef(y, p[at + "2.weight"]);
  if (act == "relu") y = torch::relu(y);
  return y;
}

torch::Tensor msconvReference(const torch::Tensor& x, Params& p, const OpSpec& s, int stride,
                              int groups) {
  const bool official = s.kind == OpKind::kMSConvOfficial;
  const std::string act = official ? "prelu" : "relu";
  const auto u1 = stack(x, p, "convs.0", stride, s.dilation1, groups, act);
  const auto u2 = stack(x, p, "convs.1", stride, s.dilation2, groups, act);
  torch::Tensor pooled;
  if (s.fusion == PoolFusion::kMul)
    pooled = (u1 * u2).sum({2, 3}, true) / (u1.size(2) * u1.size(3));
  if (s.fusion == PoolFusion::kAdd)
    pooled = (u1 + u2).sum({2, 3}, true) / (u1.size(2) * u1.size(3));
  if (s.fusion == PoolFusion::kFirst) pooled = u1.sum({2, 3}, true) / (u1.size(2) * u1.size(3));
  const auto z = stack(pooled, p, "fc", 1, 1, 1, act);
  torch::Tensor a, b;
  if (official) {
    a = stack(z, p, "fcs.0", 1, 1, 1, "prelu");
    b = stack(z, p, "fcs.1", 1, 1, 1, "prelu");
  } else {
    a = torch::conv2d(z, p["fcs.0.weight"], p["fcs.0.bias"]);
    b = torch::conv2d(z, p["fcs.1.weight"], p["fcs.1.bias"]);
  }
  // The two-way softmax over {a, b}, which Eq. 3-5 turn into the sigmoid of a - b.
  const auto ea = torch::exp(a + (official ? 1e-6 : 0.0)), eb = torch::exp(b);
  const auto c = ea / (ea + eb);
  const auto v = s.diff == DiffTerm::kSub ? c * u1 + (1 - c) * u2 : u2 + c * (u1 + u2);
  return official ? stack(v, p, "fc_d", 1, 1, 1, "prelu") : v;
}

void randomizeNorms(torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (const auto& item : m.named_parameters()) {
    const auto& k = item.key();
    if (k.find(".1.weight") != std::string::npos) item.value().uniform_(0.5, 1.5);
    if (k.find(".1.bias") != std::string::npos) item.value().uniform_(-0.2, 0.2);
    if (k.find(".2.weight") != std::string::npos) item.value().uniform_(0.05, 0.4);
  }
}

}  // namespace

TEST(OperatorsVsDirectMaths, EveryMSConvRowKernelPairAndForm) {
  torch::manual_seed(3);
  const std::vector<std::string> rows = {"msconv",
                                         "msconv*",
                                         "msconv-mo",
                                         "msconv-so",
                                         "msconv-mo-so",
                                         "msconv-official",
                                         "msconv-official:fusion=add",
                                         "msconv-official:diff=add",
                                         "msconv-official:fusion=first,diff=add"};
  const std::vector<std::string> kernels = {"k3k3", "k3k5", "k5k3", "k5k7"};
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string spec_text = rows[i] + (rows[i].find(':') == std::string::npos ? ":" : ",") +
                                  "kernels=" + kernels[i % 4];
    SCOPED_TRACE(spec_text);
    const OpSpec spec = parseOpSpec(spec_text);
    const int stride = 1 + static_cast<int>(i % 2);
    Operator op = build(spec_text, 32, stride, 8, 16);
    randomizeNorms(*op);
    op->train();
    // Double precision: BN over a batch of pooled vectors is ill-conditioned enough that float
    // rounding alone moves some gradients by 1e-4 relative; in double the maths must agree.
    op->to(torch::kFloat64);
    const auto x = torch::randn({3, 32, 9 + static_cast<int>(i % 3), 11},
                                torch::dtype(torch::kFloat64).requires_grad(true));
    auto p = params(*op);
    const auto y = op->forward(x);
    const auto r = msconvReference(x, p, spec, stride, 8);
    ASSERT_TRUE(closeTo(y, r, 1e-10, 1e-10));
    const auto g = torch::randn_like(y);
    std::vector<torch::Tensor> inputs = {x};
    for (const auto& item : op->named_parameters()) inputs.push_back(item.value());
    const auto gy = torch::autograd::grad({(y * g).sum()}, inputs, {}, true, false, true);
    const auto gr = torch::autograd::grad({(r * g).sum()}, inputs, {}, false, false, true);
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (!gy[k].defined() && !gr[k].defined()) continue;
      EXPECT_TRUE(closeTo(gy[k], gr[k], 1e-9, 1e-10)) << "gradient " << k;
    }
  }
}

TEST(OperatorsVsDirectMaths, Conv3x3Baseline) {
  torch::manual_seed(5);
  Operator op = build("conv3x3:G=4", 16, 2);
  randomizeNorms(*op);
  op->train();
  auto p = params(*op);
  const auto x = torch::randn({3, 16, 7, 7});
  EXPECT_TRUE(closeTo(op->forward(x), stack(x, p, "", 2, 1, 4, "prelu")));
}

TEST(Operators, OutputShapesForEveryOperatorAndStride) {
  for (const auto& e : listOperators()) {
    for (int stride : {1, 2}) {
      SCOPED_TRACE(e.name + " stride " + std::to_string(stride));
      Operator op = build(e.name, 64, stride);
      op->eval();
      for (int size : {7, 8, 15}) {
        const auto y = op->forward(torch::randn({1, 64, size, size}));
        const int expect = (size + stride - 1) / stride;
        EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 64, expect, expect}));
      }
    }
  }
}

TEST(Operators, TapHandsBackIntermediates) {
  Operator op = build("msconv-official", 64, 1);
  op->train();
  Tap tap;
  const auto x = torch::randn({2, 64, 8, 8}, torch::requires_grad());
  const auto y = op->forward(x, &tap, "layer");
  const auto& u1 = tap.get("layer", "U1");
  const auto& u2 = tap.get("layer", "U2");
  const auto& c = tap.get("layer", "gate");
  EXPECT_EQ(c.sizes(), (std::vector<int64_t>{2, 64, 1, 1}));
  EXPECT_TRUE(closeTo(tap.get("layer", "fused"), u2 + c * (u1 - u2)));
  EXPECT_TRUE(tap.get("layer", "out").equal(y));
  // Tapped tensors are graph nodes: gradients reach them.
  const auto g = torch::autograd::grad({y.sum()}, {u1}, {}, true)[0];
  EXPECT_EQ(g.sizes(), u1.sizes());
  EXPECT_GT(g.abs().sum().item<double>(), 0.0);

  Tap only({"other"});
  op->forward(x, &only, "layer");
  EXPECT_TRUE(only.layers().empty());
  EXPECT_THROW(only.get("layer", "U1"), Error);

  Tap sc;
  build("scconv", 64, 2)->forward(torch::randn({2, 64, 8, 8}), &sc, "s");
  for (const char* key : {"gate", "sru", "up", "low", "cru", "out"})
    EXPECT_TRUE(sc.has("s", key)) << key;
  // The peers hand back their parts.
  const std::vector<std::pair<const char*, std::vector<const char*>>> peers = {
      {"ghost", {"intrinsic", "cheap", "out"}},
      {"ghostv2", {"intrinsic", "cheap", "attention", "out"}},
      {"pconv", {"convolved", "untouched", "out"}},
      {"star", {"branch1", "branch2", "star", "out"}}};
  for (const auto& [name, keys] : peers) {
    Tap t;
    build(name, 64, 2)->forward(torch::randn({2, 64, 8, 8}), &t, "p");
    for (const char* key : keys) EXPECT_TRUE(t.has("p", key)) << name << " " << key;
  }
  Tap gs;
  build("ghost", 64, 1)->forward(torch::randn({2, 64, 8, 8}), &gs, "g");
  EXPECT_TRUE(
      closeTo(gs.get("g", "out"), torch::cat({gs.get("g", "intrinsic"), gs.get("g", "cheap")}, 1)));
}

TEST(Operators, ImpossibleOptionsAreClearErrors) {
  try {
    build("msconv-official", 48, 1, 32);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("48 channels are not divisible by G=32"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(build("scconv", 30, 1), Error);
  EXPECT_THROW(build("skconv:G=7", 64, 1), Error);
  // Ratios that leave no channel name their key.
  EXPECT_NE(test::errorOf([] { build("pconv:div=128", 64, 1); }).find("option 'div'"),
            std::string::npos);
  EXPECT_NE(test::errorOf([] {
              build("ghostv2", 8, 1)->forward(torch::randn({1, 8, 1, 1}));
            }).find("at least 2x2"),
            std::string::npos);
  Operator op = build("msconv", 64, 1);
  EXPECT_THROW(op->forward(torch::randn({1, 32, 8, 8})), Error);
}

TEST(PReLU, MatchesLibTorchForwardAndBackward) {
  torch::manual_seed(8);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{4, 6, 7, 9}, {3, 5}, {2, 16, 1, 1}}) {
    const auto x = torch::randn(shape, torch::kFloat64).to(torch::kFloat32).requires_grad_(true);
    const auto w = (torch::rand({shape[1]}) * 0.5).requires_grad_(true);
    const auto x2 = x.detach().clone().requires_grad_(true);
    const auto w2 = w.detach().clone().requires_grad_(true);
    const auto y = preluForward(x, w), y2 = torch::prelu(x2, w2);
    EXPECT_TRUE(y.equal(y2));
    const auto g = torch::randn_like(y);
    (y * g).sum().backward();
    (y2 * g).sum().backward();
    EXPECT_TRUE(closeTo(x.grad(), x2.grad(), 1e-6, 1e-7));
    EXPECT_TRUE(closeTo(w.grad(), w2.grad(), 1e-5, 1e-6));
  }
  // Channels-last input takes LibTorch's path and agrees too.
  const auto x = torch::randn({2, 8, 5, 5}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto w = torch::rand({8});
  EXPECT_TRUE(closeTo(preluForward(x, w), torch::prelu(x.contiguous(), w)));
}

TEST(PReLU, OneSharedSlopeMatchesLibTorchInEveryLayout) {
  torch::manual_seed(9);
  // Large enough for several gradient chunks; NCHW, channels-last and 2-d.
  for (const auto& [shape, last] :
       std::vector<std::pair<std::vector<int64_t>, bool>>{{{4, 32, 33, 17}, false},
                                                          {{4, 32, 33, 17}, true},
                                                          {{3, 5}, false},
                                                          {{1, 1, 1, 1}, false}}) {
    SCOPED_TRACE(::testing::PrintToString(shape) + (last ? " channels-last" : ""));
    auto base = torch::randn(shape);
    if (last) base = base.contiguous(torch::MemoryFormat::ChannelsLast);
    const auto x = base.clone().requires_grad_(true);
    const auto w = torch::full({1}, 0.3).requires_grad_(true);
    const auto x2 = base.contiguous().clone().requires_grad_(true);
    const auto w2 = w.detach().clone().requires_grad_(true);
    const auto y = preluForward(x, w), y2 = torch::prelu(x2, w2);
    EXPECT_TRUE(y.equal(y2));
    EXPECT_EQ(y.strides(), x.strides());  // the layout is kept
    const auto g = torch::randn_like(y2);
    (y * g).sum().backward();
    (y2 * g).sum().backward();
    EXPECT_TRUE(closeTo(x.grad(), x2.grad(), 1e-6, 1e-7));
    EXPECT_TRUE(closeTo(w.grad(), w2.grad(), 1e-5, 1e-5));
  }
  // The slope's gradient does not depend on the thread count (fixed chunks).
  const auto x = torch::randn({8, 16, 40, 40});
  const auto g = torch::randn_like(x);
  auto slopeGrad = [&](int threads) {
    at::set_num_threads(threads);
    const auto w = torch::full({1}, 0.2).requires_grad_(true);
    (preluForward(x, w) * g).sum().backward();
    return w.grad().item<float>();
  };
  const int before = at::get_num_threads();
  const float one = slopeGrad(1), two = slopeGrad(2);
  at::set_num_threads(before);
  EXPECT_EQ(one, two);
}
