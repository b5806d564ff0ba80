// The inference form (nn::prepareInference / inferenceCopy): BatchNorm folded into the preceding
// convolution, channels-last, run without autograd, against the eval-mode training graph, and
// the MSCONV_KERNELS=libtorch switch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <thread>

#include "msconv/error.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/batch_norm.h"
#include "msconv/nn/inference.h"
#include "msconv/nn/inference_conv.h"
#include "msconv/nn/kernel_switch.h"
#include "msconv/nn/prelu.h"
#include "msconv/nn/spec.h"
#include "msconv/nn/tap.h"

using namespace msconv;
using namespace msconv::nn;

namespace {

// Running statistics and affine parameters away from their initial values, so that a fold that
// forgot one of them (or applied it twice) shows.
void randomiseBatchNorms(torch::nn::Module& model, int seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (const auto& m : model.modules()) {
    auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get());
    if (!bn) continue;
    const int64_t c = bn->options.num_features();
    bn->running_mean.copy_(torch::randn({c}) * 0.3);
    bn->running_var.copy_(torch::rand({c}) * 1.5 + 0.25);
    if (bn->options.affine()) {
      bn->weight.copy_(torch::rand({c}) + 0.5);
      bn->bias.copy_(torch::randn({c}) * 0.2);
    }
  }
}

double relativeError(const torch::Tensor& got, const torch::Tensor& want) {
  const double scale = want.abs().max().item<double>();
  return (got.to(torch::kDouble) - want.to(torch::kDouble)).abs().max().item<double>() /
         std::max(scale, 1e-12);
}

int countFolded(torch::nn::Module& model) {
  int n = 0;
  for (const auto& m : model.modules())
    if (auto* bn = dynamic_cast<BatchNorm2dImpl*>(m.get())) n += bn->folded ? 1 : 0;
  return n;
}

// Compares embeddings and every tapped tensor of the eval-mode graph and the inference copy.
// expect_fused: the family's folded convolutions run through forwardConvBnAct (MSNet, iResNet),
// so the fused convolution must have run.
void expectInferenceMatches(const std::string& arch, const std::string& op,
                            bool expect_fused = true) {
  SCOPED_TRACE(arch + " / " + op);
  Backbone model;
  try {
    model = makeBackbone(arch, op);
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  randomiseBatchNorms(*model, 7);
  model->eval();
  torch::manual_seed(3);
  const auto x = torch::randn({3, 3, 112, 112});
  Tap graph_tap, inference_tap;
  torch::Tensor want;
  {
    torch::NoGradGuard no_grad;
    want = model->forward(x, &graph_tap);
  }
  InferenceInfo info;
  const Backbone fast = inferenceCopy(model, {}, &info);
  ASSERT_NE(fast.get(), model.get());
  EXPECT_TRUE(fast->inferenceForm());
  EXPECT_FALSE(model->inferenceForm());
  EXPECT_EQ(countFolded(*model), 0) << "the trained model itself is not changed";
  EXPECT_EQ(countFolded(*fast), info.folded);
  EXPECT_TRUE(info.channels_last);
  torch::Tensor got, untapped;
  const int64_t fused_before = inferenceConvRuns();
  {
    c10::InferenceMode guard;
    got = fast->forward(inferenceInput(*fast, x), &inference_tap);
    // Untapped, the bottlenecks may write their output over their input (the identity add).
    untapped = fast->forward(inferenceInput(*fast, x));
  }
  EXPECT_LT(relativeError(got, want), 1e-5);
  EXPECT_LT(relativeError(untapped, want), 1e-5);
  // The folded convolutions ran fused (oneDNN with their epilogue), where this build has that.
  if (inferenceConvEnabled() && expect_fused) {
    EXPECT_GT(inferenceConvRuns(), fused_before);
  }
  // What inspection shows: each tapped tensor is the graph's.
  for (const auto& [layer, keys] : graph_tap.layers())
    for (const auto& [key, t] : keys) {
      SCOPED_TRACE(layer + "/" + key);
      ASSERT_TRUE(inference_tap.has(layer, key));
      const auto& u = inference_tap.get(layer, key);
      ASSERT_EQ(u.sizes(), t.sizes());
      EXPECT_LT(relativeError(u, t), 1e-5);
    }
  // The graph still runs as before.
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(x), want));
}

}  // namespace

TEST(Inference, EveryOperatorInMSNetTinyMatchesTheGraph) {
  for (const auto& e : listOperators()) expectInferenceMatches("msnet-tiny", e.name);
}

TEST(Inference, OtherFamiliesMatchTheGraph) {
  expectInferenceMatches("iresnet-tiny", "conv");
  expectInferenceMatches("iresnet-tiny", "msconv-official");
  expectInferenceMatches("fasternet-t0", "pconv", false);
}

TEST(Inference, FoldsEveryConvolutionBatchNormPairOfMSNet) {
  // iResNet's pre-activation BatchNorms (bn1 before conv1, bn3 after the operator, bn2 of the
  // head) follow no convolution of their own: its stem, each block's conv1 -> bn2 and the
  // downsample stacks fold. FasterNet: the patch embedding, the merges, each MLP's conv + BN.
  for (const char* arch : {"iresnet-tiny", "fasternet-t0"}) {
    auto m = makeBackbone(arch);
    const int stages = 4;
    const auto info = prepareInference(*m);
    EXPECT_GE(info.folded, 1 + stages) << arch;
  }
  auto model = makeBackbone("msnet-tiny", "msconv-official");
  randomiseBatchNorms(*model, 1);
  // Every BatchNorm of the authors' MSNet follows a convolution in a conv + BN [+ act] stack.
  int bns = 0;
  for (const auto& m : model->modules()) bns += dynamic_cast<BatchNorm2dImpl*>(m.get()) ? 1 : 0;
  const auto info = prepareInference(*model);
  EXPECT_EQ(info.folded, bns);
  EXPECT_GT(bns, 10);
  EXPECT_FALSE(model->is_training());
  for (const auto& p : model->parameters()) {
    EXPECT_FALSE(p.requires_grad());
    if (p.dim() == 4) {
      EXPECT_TRUE(p.is_contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
  // A second preparation finds nothing left to fold.
  EXPECT_EQ(prepareInference(*model).folded, 0);
  // A folded BatchNorm cannot train: it says so instead of training the wrong thing.
  model->train();
  try {
    model->forward(torch::randn({2, 3, 112, 112}));
    FAIL() << "training a folded model should throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("folded"), std::string::npos) << e.what();
  }
}

TEST(Inference, WithoutFoldingOrLayoutIsTheGraphExactly) {
  auto model = makeBackbone("msnet-tiny", "msconv-official");
  randomiseBatchNorms(*model, 2);
  model->eval();
  const auto x = torch::randn({2, 3, 112, 112});
  torch::NoGradGuard no_grad;
  const auto want = model->forward(x);
  InferenceOptions o;
  o.fold_batchnorm = false;
  o.channels_last = false;
  InferenceInfo info;
  const auto copy = inferenceCopy(model, o, &info);
  EXPECT_EQ(info.folded, 0);
  EXPECT_LT(relativeError(copy->forward(inferenceInput(*copy, x)), want), 1e-6);
  // An inference form is its own inference copy.
  EXPECT_EQ(inferenceCopy(copy).get(), copy.get());
}

TEST(KernelSwitch, LibtorchOnlyGivesLibTorchsOwnOperators) {
  torch::manual_seed(5);
  const auto x = torch::randn({4, 8, 9, 9});
  const auto shared = torch::full({1}, 0.25), channel = torch::rand({8});
  struct Restore {
    bool was = libtorchKernelsOnly();
    ~Restore() { setLibtorchKernelsOnly(was); }
  } restore;
  setLibtorchKernelsOnly(true);
  EXPECT_FALSE(customKernels());
  EXPECT_TRUE(torch::equal(preluForward(x, shared), torch::prelu(x, shared)));
  EXPECT_TRUE(torch::equal(preluForward(x, channel), torch::prelu(x, channel)));
  // And the backbone's forward and gradients are the same functions with the kernels on.
  auto model = makeBackbone("msnet-tiny", "msconv-official");
  model->train();
  const auto in = torch::randn({2, 3, 112, 112});
  const auto ref = model->forward(in);
  ref.square().sum().backward();
  std::vector<torch::Tensor> ref_grads;
  for (const auto& p : model->parameters()) ref_grads.push_back(p.grad().clone());
  model->zero_grad();
  setLibtorchKernelsOnly(false);
  EXPECT_TRUE(customKernels());
  const auto out = model->forward(in);
  out.square().sum().backward();
  EXPECT_LT(relativeError(out.detach(), ref.detach()), 1e-5);
  const auto params = model->named_parameters();
  // A shared PReLU slope's gradient is one sum over a whole activation, with cancellation:
  // LibTorch sums it in float, the hand-written kernel in double, so it gets a wider bound.
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_LT(relativeError(params[i].value().grad(), ref_grads[i]),
              params[i].value().numel() == 1 ? 1e-2 : 1e-3)
        << params[i].key();
}

// ---- The fused convolution itself (nn/inference_conv.h) ---------------------------------------

namespace inference_conv_test {

struct FusedCase {
  int64_t n, cin, hw, cout, k, stride, pad, dilation, groups;
  bool channels_last, bias, residual;
  int64_t slopes;  // 0: none, 1: shared, cout: per channel
  bool relu;
};

struct Inputs {
  torch::Tensor x, w, b, r, slope;
};

Inputs makeInputs(const FusedCase& c, int seed) {
  torch::manual_seed(seed);
  Inputs in;
  in.x = torch::randn({c.n, c.cin, c.hw, c.hw});
  in.w = torch::randn({c.cout, c.cin / c.groups, c.k, c.k}) * 0.2;
  if (c.channels_last) {
    in.x = in.x.contiguous(torch::MemoryFormat::ChannelsLast);
    in.w = in.w.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  if (c.bias) in.b = torch::randn({c.cout});
  const int64_t out = (c.hw + 2 * c.pad - c.dilation * (c.k - 1) - 1) / c.stride + 1;
  if (c.residual) {
    in.r = torch::randn({c.n, c.cout, out, out});
    if (c.channels_last) in.r = in.r.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  if (c.slopes) in.slope = torch::rand({c.slopes}) * 0.5;
  return in;
}

ConvGeometry geometry(const FusedCase& c) {
  ConvGeometry g;
  g.stride = {c.stride, c.stride};
  g.padding = {c.pad, c.pad};
  g.dilation = {c.dilation, c.dilation};
  g.groups = c.groups;
  return g;
}

// LibTorch's composed form: conv2d, + residual, then PReLU or ReLU.
torch::Tensor composed(const FusedCase& c, const Inputs& in) {
  auto y = torch::conv2d(in.x, in.w, in.b, c.stride, c.pad, c.dilation, c.groups);
  if (c.residual) y = y + in.r;
  if (c.slopes) y = torch::prelu(y, in.slope);
  if (c.relu) y = torch::relu(y);
  return y;
}

ConvEpilogue epilogue(const Inputs& in, bool relu) {
  ConvEpilogue e;
  e.residual = in.r;
  e.slope = in.slope;
  e.relu = relu;
  return e;
}

// The fused path on for the test (whatever MSCONV_KERNELS / MSCONV_FUSED_CONV say), then as before.
struct FusionOn {
  bool was = libtorchKernelsOnly();
  FusionOn() {
    setLibtorchKernelsOnly(false);
    setInferenceConvFusion(true);
  }
  ~FusionOn() {
    setLibtorchKernelsOnly(was);
    setInferenceConvFusion(true);
  }
};

}  // namespace inference_conv_test

TEST(InferenceConv, MatchesLibtorchsComposedForm) {
  using namespace inference_conv_test;
  const FusionOn on;
  const std::vector<FusedCase> cases{
      // MSNet's 1x1 conv + PReLU, and its bottleneck tail (+ shortcut, then PReLU)
      {4, 32, 14, 64, 1, 1, 0, 1, 1, true, true, false, 1, false},
      {4, 64, 14, 32, 1, 1, 0, 1, 1, true, true, true, 1, false},
      // the branches: grouped 3x3, dilated, strided
      {3, 64, 14, 64, 3, 1, 2, 2, 32, true, true, false, 1, false},
      {3, 64, 15, 64, 3, 2, 1, 1, 32, true, true, false, 1, false},
      // the stem (7x7, stride 2), a ReLU, no bias, NCHW, nothing after the bias
      {2, 3, 40, 16, 7, 2, 3, 1, 1, true, true, false, 1, false},
      {2, 16, 9, 24, 3, 1, 1, 1, 1, true, false, false, 0, true},
      {2, 16, 9, 24, 3, 1, 1, 1, 1, false, true, true, 1, false},
      {2, 16, 9, 24, 3, 1, 1, 1, 1, true, true, false, 0, false},
  };
  c10::InferenceMode guard;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    const auto& c = cases[i];
    const auto in = makeInputs(c, static_cast<int>(i));
    const auto want = composed(c, in);
    std::shared_ptr<InferenceConvState> state;
    const auto got = inferenceConv(state, in.x, in.w, in.b, geometry(c), epilogue(in, c.relu));
    ASSERT_TRUE(got.defined());
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_EQ(got.is_contiguous(torch::MemoryFormat::ChannelsLast) && !got.is_contiguous(),
              c.channels_last);
    EXPECT_LT(relativeError(got, want), 1e-5);
    // A second call runs the cached primitive and weights; another batch size, a new primitive
    // beside it.
    EXPECT_TRUE(torch::equal(
        inferenceConv(state, in.x, in.w, in.b, geometry(c), epilogue(in, c.relu)), got));
    Inputs half = in;
    half.x = in.x.narrow(0, 0, 1).contiguous(in.x.suggest_memory_format());
    if (c.residual) half.r = in.r.narrow(0, 0, 1).contiguous(in.r.suggest_memory_format());
    EXPECT_LT(
        relativeError(inferenceConv(state, half.x, in.w, in.b, geometry(c), epilogue(half, c.relu)),
                      composed(c, half)),
        1e-5);
  }
  // A slope per channel is the caller's to apply (oneDNN 2.6 declines it as a post-op).
  const FusedCase c{2, 16, 9, 24, 1, 1, 0, 1, 1, true, true, false, 24, false};
  const auto in = makeInputs(c, 30);
  std::shared_ptr<InferenceConvState> state;
  EXPECT_FALSE(inferenceConv(state, in.x, in.w, in.b, geometry(c), epilogue(in, false)).defined());
}

TEST(InferenceConv, WritesOverTheResidualOnlyWhereAllowed) {
  using namespace inference_conv_test;
  const FusionOn on;
  const FusedCase c{2, 32, 7, 32, 1, 1, 0, 1, 1, true, true, true, 1, false};
  const auto in = makeInputs(c, 11);
  const auto want = composed(c, in);
  const auto kept = in.r.clone();
  std::shared_ptr<InferenceConvState> state;
  auto e = epilogue(in, false);
  {
    // Grad mode on (an autograd graph could have saved the residual): never written over.
    e.residual_writable = true;
    const auto y = inferenceConv(state, in.x, in.w, in.b, geometry(c), e);
    ASSERT_TRUE(y.defined());
    EXPECT_NE(y.data_ptr(), in.r.data_ptr());
    EXPECT_TRUE(torch::equal(in.r, kept));
    EXPECT_LT(relativeError(y, want), 1e-5);
  }
  c10::InferenceMode guard;
  e.residual_writable = false;
  const auto y = inferenceConv(state, in.x, in.w, in.b, geometry(c), e);
  ASSERT_TRUE(y.defined());
  EXPECT_NE(y.data_ptr(), in.r.data_ptr());
  EXPECT_TRUE(torch::equal(in.r, kept)) << "a residual the caller keeps is not written";
  EXPECT_LT(relativeError(y, want), 1e-5);
  // The convolution's own input as the residual: not written over while it is being read.
  Inputs self = in;
  self.r = in.x;
  auto es = epilogue(self, false);
  es.residual_writable = true;
  const auto x_kept = in.x.clone();
  const auto s = inferenceConv(state, in.x, in.w, in.b, geometry(c), es);
  ASSERT_TRUE(s.defined());
  EXPECT_TRUE(torch::equal(in.x, x_kept));
  EXPECT_LT(relativeError(s, composed(c, self)), 1e-5);
  // Given up by the caller: written over.
  e.residual_writable = true;
  const auto z = inferenceConv(state, in.x, in.w, in.b, geometry(c), e);
  ASSERT_TRUE(z.defined());
  EXPECT_EQ(z.data_ptr(), in.r.data_ptr());
  EXPECT_LT(relativeError(z, want), 1e-5);
}

TEST(InferenceConv, FollowsWeightsChangedInPlace) {
  using namespace inference_conv_test;
  const FusionOn on;
  const FusedCase c{2, 64, 9, 64, 3, 1, 1, 1, 32, true, true, false, 1, false};
  auto in = makeInputs(c, 12);
  std::shared_ptr<InferenceConvState> state;
  torch::NoGradGuard no_grad;
  const auto first = inferenceConv(state, in.x, in.w, in.b, geometry(c), epilogue(in, false));
  ASSERT_TRUE(first.defined());
  in.w.mul_(-1.5);  // the weights reordered for the primitive are stale now
  const auto second = inferenceConv(state, in.x, in.w, in.b, geometry(c), epilogue(in, false));
  ASSERT_TRUE(second.defined());
  EXPECT_LT(relativeError(second, composed(c, in)), 1e-5);
  // A weight that is a strided view (every other filter of a larger tensor), changed in place
  // through its base: the view shares the base's version counter.
  auto base = torch::randn({128, 2, 3, 3}) * 0.2;
  Inputs v = in;
  v.w = base.slice(0, 0, 128, 2);
  ASSERT_FALSE(v.w.is_contiguous());
  std::shared_ptr<InferenceConvState> vstate;
  EXPECT_LT(relativeError(inferenceConv(vstate, v.x, v.w, v.b, geometry(c), epilogue(v, false)),
                          composed(c, v)),
            1e-5);
  base.add_(0.5);
  EXPECT_LT(relativeError(inferenceConv(vstate, v.x, v.w, v.b, geometry(c), epilogue(v, false)),
                          composed(c, v)),
            1e-5);
}

TEST(InferenceConv, OneModuleFromTwoThreads) {
  using namespace inference_conv_test;
  const FusionOn on;
  const FusedCase c{3, 64, 14, 64, 1, 1, 0, 1, 1, true, true, true, 1, false};
  const auto in = makeInputs(c, 14);
  const auto want = composed(c, in);
  std::shared_ptr<InferenceConvState> state;  // created by whichever thread comes first
  std::atomic<int> bad{0};
  const auto work = [&] {
    c10::InferenceMode guard;
    for (int k = 0; k < 20; ++k) {
      const auto y = inferenceConv(state, in.x, in.w, in.b, geometry(c), epilogue(in, false));
      if (!y.defined() || relativeError(y, want) > 1e-5) ++bad;
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(InferenceConv, StepsAsideWhereItDoesNotApply) {
  using namespace inference_conv_test;
  const FusionOn on;
  const FusedCase c{2, 16, 9, 24, 3, 1, 1, 1, 1, true, true, false, 1, false};
  auto in = makeInputs(c, 13);
  std::shared_ptr<InferenceConvState> state;
  const auto run = [&](const Inputs& i, const ConvGeometry& g) {
    return inferenceConv(state, i.x, i.w, i.b, g, epilogue(i, false));
  };
  // A gradient wanted: the composed form, which autograd can differentiate.
  in.x.requires_grad_(true);
  EXPECT_FALSE(run(in, geometry(c)).defined());
  in.x = in.x.detach();
  torch::NoGradGuard no_grad;
  // Not float32; not contiguous in either layout; a stride of 0.
  Inputs d = in;
  d.x = in.x.to(torch::kDouble);
  d.w = in.w.to(torch::kDouble);
  EXPECT_FALSE(run(d, geometry(c)).defined());
  Inputs t = in;
  t.x = in.x.contiguous().narrow(3, 0, 8);
  EXPECT_FALSE(run(t, geometry(c)).defined());
  auto zero_stride = geometry(c);
  zero_stride.stride = {0, 1};
  EXPECT_FALSE(run(in, zero_stride).defined());
  // The switches: MSCONV_KERNELS=libtorch, and the fusion's own.
  setLibtorchKernelsOnly(true);
  EXPECT_FALSE(run(in, geometry(c)).defined());
  setLibtorchKernelsOnly(false);
  setInferenceConvFusion(false);
  EXPECT_FALSE(run(in, geometry(c)).defined());
  setInferenceConvFusion(true);
  EXPECT_TRUE(run(in, geometry(c)).defined());
}
