// BatchNorm in training followed by PReLU (one shared slope or one per channel), ReLU or nothing,
// as one autograd node with hand-written CPU kernels, for float32 tensors (NCHW contiguous,
// channels-last, or 2-d N x C).
//   forward:  per-channel batch mean and biased variance, then
//             y = act(x * gamma * invstd + (beta - mean * gamma * invstd)); the statistics from
//             float sums over short chunks, combined in double (NCHW: each chunk centred on its own
//             mean, chunks merged by Chan's formula; channels-last: sums of x - K, K the channel's
//             mean over the first rows), so they match LibTorch's double-precision two-pass ones;
//             NCHW does statistics and output per channel while the channel is still in cache; the
//             running statistics are updated as LibTorch's BatchNorm updates them.
//   backward: one reduction pass gives, per channel, sum(dz), sum(dz * (x - mean)) and the slope's
//             sum(g * z over z <= 0) (z = BN(x), recomputed from x; dz = g * act'(z)), then one
//             pass writes dx. Gradients of x, gamma, beta and the slope as each requires.
// Reductions run in a fixed order (channels, or fixed row blocks merged in order), so results do
// not depend on the thread count. Saved for backward: x, the BN parameters, mean and invstd (the
// BN output z is never stored).
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include "msconv/nn/batch_norm.h"
#include "msconv/nn/layers.h"
#include "msconv/nn/prelu.h"

namespace msconv::nn {

enum class BnAct { kNone, kReLU, kPReLU };

// Whether the modules use the fused node (forwardBnAct, forwardConvBnAct): on by default;
// MSCONV_BN_FUSED=0 in the environment or setBnActFusion(false) keeps the modules' own path (for
// comparisons). MSCONV_KERNELS=libtorch switches it off with every other hand-written kernel.
bool bnActFusionEnabled();
void setBnActFusion(bool on);

// Whether bnActTrain takes x: float32 CPU, 2-d or 4-d, contiguous or channels-last contiguous,
// more than one value per channel.
bool bnActFusable(const torch::Tensor& x);

// y = act(batch_norm(x, training)) with its backward as one node; updates running_mean and
// running_var in place with `momentum` (LibTorch's exponential_average_factor: the caller passes
// 1 / num_batches_tracked for a cumulative average). `slope`: the PReLU weight, [1] or [C]
// (ignored for kNone and kReLU). Every tensor float32 on the CPU; x as bnActFusable says.
torch::Tensor bnActTrain(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias, const torch::Tensor& running_mean,
                         const torch::Tensor& running_var, BnAct act, const torch::Tensor& slope,
                         double momentum, double eps);

// act(bn(x)) for a BatchNorm module and an optional PReLU after it (nullptr: none): the fused
// node when bn is training with affine parameters and running statistics, has no cross-rank sync,
// the hand-written kernels and the fusion are on (customKernels(), bnActFusionEnabled()) and x
// is 4-d NCHW contiguous (channels-last measured slower fused than LibTorch's BatchNorm + the
// hand-written PReLU); otherwise the modules' own forwards, unchanged.
torch::Tensor forwardBnAct(BatchNorm2dImpl& bn, PReLUImpl* act, const torch::Tensor& x);

// seq->forward(x) for a conv + BN [+ activation] stack (convBnAct's Sequential, or any Sequential
// of a Conv2d, a msconv BatchNorm2d and optionally a PReLU or ReLU). In training: the conv, then
// the fused BN + activation node under forwardBnAct's conditions. In the inference form (the BN
// folded into the conv): one fused convolution with the activation in its epilogue
// (CountedConv2dImpl::forwardFused). Any other Sequential, or where neither applies, is
// seq->forward(x).
torch::Tensor forwardConvBnAct(torch::nn::Sequential& seq, const torch::Tensor& x);

// act(bn(conv(x))) for a convolution whose output reaches the BatchNorm alone (iResNet's conv1
// -> bn2 -> PReLU): in the inference form (bn folded into conv) one fused convolution with the
// PReLU in its epilogue (a per-channel slope applied after it); otherwise conv's forward, then
// forwardBnAct.
torch::Tensor forwardConvFoldedAct(CountedConv2dImpl& conv, BatchNorm2dImpl& bn, PReLUImpl* act,
                                   const torch::Tensor& x);

// act(seq(x) + residual) for a conv + BN stack (no activation of its own) followed by a residual
// add and a PReLU: the bottleneck's tail. In the inference form, one fused convolution with the
// add and the PReLU in its epilogue (written over `residual` where `residual_writable`: the
// caller holds no other use of it); otherwise forwardConvBnAct, the add and act's forward.
torch::Tensor forwardConvBnAddAct(torch::nn::Sequential& seq, const torch::Tensor& x,
                                  const torch::Tensor& residual, bool residual_writable,
                                  PReLUImpl& act);

}  // namespace msconv::nn
