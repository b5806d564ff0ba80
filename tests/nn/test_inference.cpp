// The inference form (nn::prepareInference / inferenceCopy): BatchNorm folded into the preceding
// convolution, channels-last, run without autograd, against the eval-mode training graph, and
// the MSCONV_KERNELS=libtorch switch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "msconv/error.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/batch_norm.h"
#include "msconv/nn/inference.h"
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
void expectInferenceMatches(const std::string& arch, const std::string& op) {
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
  torch::Tensor got;
  {
    c10::InferenceMode guard;
    got = fast->forward(inferenceInput(*fast, x), &inference_tap);
  }
  EXPECT_LT(relativeError(got, want), 1e-5);
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
  expectInferenceMatches("fasternet-t0", "pconv");
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
