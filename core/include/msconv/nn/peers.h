// The paper's other Table 7 peers as 3x3 operators of the frame, each written from its paper and
// its authors' public code, with their state_dict names:
//   ghost    GhostNet (huawei-noah, ghostnet.py GhostModule): primary_conv = 3x3 conv (the unit's
//            stride) to ceil(C/s) intrinsic maps + BN + ReLU; cheap_operation = d x d depthwise
//            conv making (s-1) maps of each + BN + ReLU; out = cat(intrinsic, cheap)[:C].
//            Tap keys: intrinsic, cheap, out.
//   ghostv2  GhostNetV2 (ghostnetv2_torch.py GhostModuleV2, mode 'attn'): the Ghost module times
//            the DFC attention sigmoid(short_conv(avg_pool 2x2(x))), up-sampled (nearest) to the
//            output; short_conv = 3x3 conv (stride) + BN, 1xK depthwise + BN, Kx1 depthwise + BN.
//            Tap keys: intrinsic, cheap, attention (up-sampled), out.
//   pconv    FasterNet (JierunChen, fasternet.py MLPBlock): x + mlp(spatial_mixing(x)), where
//            spatial_mixing 3x3-convolves the first C/div channels (partial_conv3, no bias) and
//            passes the rest, and mlp = 1x1 (C -> mlp*C) + BN + act (the frame's: ReLU, GELU in
//            FasterNet-T0) + 1x1 (-> C). With stride 2 a 3x3 average pool (stride 2, pad 1) comes
//            first, as PConv has no stride. Tap keys: convolved, untouched, out.
//   star     StarNet (ma-xu, starnet.py Block): dwconv = KxK depthwise (the stride) + BN; f1, f2
//            = 1x1 to mlp*C (with bias); ReLU6(f1) * f2; g = 1x1 + BN; dwconv2 = KxK depthwise
//            (bias); + x when the stride is 1 (the block's residual). Tap keys: branch1
//            (ReLU6(f1)), branch2 (f2), star (their product), out.
#pragma once

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>

#include "msconv/nn/operators.h"

namespace msconv::nn {

class GhostImpl : public OperatorImpl {
 public:
  GhostImpl(const OpSpec& spec, const OpContext& ctx);
  torch::Tensor forward(const torch::Tensor& x, Tap* tap, const std::string& layer) override;
  torch::nn::Sequential primary_conv{nullptr}, cheap_operation{nullptr};
  torch::nn::Sequential short_conv{nullptr};  // ghostv2 only

 private:
  bool attention_ = false;
};

class PConvImpl : public OperatorImpl {
 public:
  PConvImpl(const OpSpec& spec, const OpContext& ctx);
  torch::Tensor forward(const torch::Tensor& x, Tap* tap, const std::string& layer) override;
  std::shared_ptr<torch::nn::Module> spatial_mixing;  // holds partial_conv3
  CountedConv2d partial_conv3{nullptr};
  torch::nn::Sequential mlp{nullptr};

 private:
  int convolved_ = 0;
};

class StarImpl : public OperatorImpl {
 public:
  StarImpl(const OpSpec& spec, const OpContext& ctx);
  torch::Tensor forward(const torch::Tensor& x, Tap* tap, const std::string& layer) override;
  torch::nn::Sequential dwconv{nullptr}, f1{nullptr}, f2{nullptr}, g{nullptr}, dwconv2{nullptr};
};

}  // namespace msconv::nn
