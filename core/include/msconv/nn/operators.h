// The 3x3 feature-fusion operators: MSConv (paper and authors' forms, with the ablation switches),
// SKConv, SCConv, and the plain and grouped convolution baselines. One factory builds any of them
// from an OpSpec, so configs, the CLI, the GUI and the tests name operators the same way.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/normalization.h>

#include <memory>
#include <string>

#include "msconv/nn/batch_norm.h"
#include "msconv/nn/layers.h"
#include "msconv/nn/prelu.h"
#include "msconv/nn/spec.h"
#include "msconv/nn/tap.h"

namespace msconv::nn {

// An operator maps N x C x H x W to N x C x ceil(H/stride) x ceil(W/stride).
class OperatorImpl : public torch::nn::Module {
 public:
  // `layer` names this operator in taps ("stage1.0.op"); with a tap that wants it, the operator
  // hands back its intermediates (see each class for the keys).
  virtual torch::Tensor forward(const torch::Tensor& x, Tap* tap = nullptr,
                                const std::string& layer = {}) = 0;
  const OpSpec& spec() const { return spec_; }
  int channels() const { return channels_; }
  int stride() const { return stride_; }

 protected:
  // Records the spec, channels and stride every operator keeps.
  void init(const OpSpec& spec, int channels, int stride);
  // Throws msconv::Error naming the operator and layer unless x is N x channels() x H x W.
  void checkInput(const torch::Tensor& x, const std::string& layer) const;
  // For operators without a stride of their own (SCConv, PConv): a 3x3 average pool (stride,
  // pad 1, padding not counted) when the stride is above 1, else x.
  torch::Tensor applyStride(const torch::Tensor& x) const;

  OpSpec spec_;
  int channels_ = 0;
  int stride_ = 1;
};
using Operator = std::shared_ptr<OperatorImpl>;

// Shape context for building an operator: channels, stride, the architecture's defaults for G and
// L, the frame's PReLU slopes (an operator's own PReLUs follow its frame: in MSNet one shared
// slope, as the authors' MSConv; in iResNet one per channel), and the layer name used in error
// messages.
struct OpContext {
  int channels = 0;
  int stride = 1;
  int default_groups = 32;
  int default_min_dim = 32;
  PReluSlopes prelu = PReluSlopes::kShared;
  FrameAct act = FrameAct::kReLU;  // FasterNet's MLP activation, for pconv
  std::string layer;
};

// "operator 'SPEC' at LAYER" (without " at" when the layer is unnamed): how errors name it.
std::string describeOperator(const OpSpec& spec, const std::string& layer);

// Builds the operator; throws msconv::Error for impossible options (channels not divisible by
// G...).
Operator makeOperator(const OpSpec& spec, const OpContext& ctx);

// "conv": one 3x3 convolution, no bias; its parameter is "weight" (iResNet's conv2.weight).
// Tap keys: out.
class PlainConvImpl : public OperatorImpl {
 public:
  PlainConvImpl(const OpSpec& spec, const OpContext& ctx);
  torch::Tensor forward(const torch::Tensor& x, Tap* tap, const std::string& layer) override;
  torch::Tensor weight;
};

// "conv3x3": grouped 3x3 + BN + PReLU (the frame's slopes), children "0", "1", "2". Tap keys: out.
class Conv3x3Impl : public OperatorImpl {
 public:
  Conv3x3Impl(const OpSpec& spec, const OpContext& ctx);
  torch::Tensor forward(const torch::Tensor& x, Tap* tap, const std::string& layer) override;
  torch::nn::Sequential body{nullptr};
};

// MSConv, both forms. Children follow the authors' state_dict: convs.{0,1} (branch conv, BN, act),
// fc (reduce), fcs.{0,1} (heads a, b), and for the authors' form fc_d (1x1 projection).
//   paper form:    branches conv+BN+ReLU; fc conv+BN+ReLU; heads plain 1x1 convs with bias;
//                  c = sigmoid(a - b)
//   authors' form: every conv followed by BN + PReLU (one shared slope each in the MSNet frame,
//                  nn.PReLU() as their code); c = sigmoid(a - b + 1e-6); V -> fc_d(V)
//   switches:      s = mean_HW(U1*U2 | U1+U2 | U1);  V = U2 + c * (U1-U2 | U1+U2)
// Tap keys: U1, U2, pooled (s), gate (c), fused (V before fc_d), out.
class MSConvImpl : public OperatorImpl {
 public:
  MSConvImpl(const OpSpec& spec, const OpContext& ctx);
  torch::Tensor forward(const torch::Tensor& x, Tap* tap, const std::string& layer) override;
  int reducedDim() const { return reduced_; }
  // The gate network, pooled s (N x C x 1 x 1) -> c = sigmoid(a - b (+ 1e-6)): with `fused`, in
  // training, one fused node where nn/gate_net.h takes it; the modules one by one otherwise.
  torch::Tensor gate(const torch::Tensor& s, bool fused);

  torch::nn::ModuleList convs{nullptr};
  torch::nn::Sequential fc{nullptr};
  torch::nn::ModuleList fcs{nullptr};
  torch::nn::Sequential fc_d{nullptr};  // authors' form only

 private:
  int reduced_ = 0;
  bool official_ = false;
};

// SKConv (SKNet): branches conv+BN+ReLU, fuse by sum, GAP, fc conv+BN+ReLU, two heads, softmax over
// the branches per channel, V = a*U1 + b*U2. Tap keys: U1, U2, pooled, gate (a), out.
class SKConvImpl : public OperatorImpl {
 public:
  SKConvImpl(const OpSpec& spec, const OpContext& ctx);
  torch::Tensor forward(const torch::Tensor& x, Tap* tap, const std::string& layer) override;
  torch::nn::ModuleList convs{nullptr};
  torch::nn::Sequential fc{nullptr};
  torch::nn::ModuleList fcs{nullptr};

 private:
  int reduced_ = 0;
};

// SCConv as its authors compute it (cheng-haha/ScConv): SRU (group norm; gate = sigmoid(GN(x) * w)
// with w = gamma / sum(gamma); soft weights of the input x itself, w1 = 1 where gate > 0.5 else
// gate, w2 = 0 where gate > 0.5 else gate; cross reconstruction of w1 * x and w2 * x) then CRU
// (alpha 1/2, squeeze 2, group-wise 3x3 with 2 groups and a bias + point-wise, low path concat,
// channel softmax fusion), followed by BN + PReLU (the frame's slopes) as every 3x3 unit of the
// frame.
// SCConv has no stride of its own: with stride 2, a 3x3 average pool (stride 2, pad 1) sits
// between SRU and CRU. Tap keys: gate (SRU reweights), sru, up (Y1), low (Y2), cru, out.
class SCConvImpl : public OperatorImpl {
 public:
  SCConvImpl(const OpSpec& spec, const OpContext& ctx);
  torch::Tensor forward(const torch::Tensor& x, Tap* tap, const std::string& layer) override;

  torch::nn::GroupNorm gn{nullptr};
  CountedConv2d squeeze1{nullptr}, squeeze2{nullptr}, GWC{nullptr}, PWC1{nullptr}, PWC2{nullptr};
  BatchNorm2d bn{nullptr};
  PReLU act{nullptr};

 private:
  int up_ = 0, low_ = 0;
};

}  // namespace msconv::nn
