// MSConv's gate network as one autograd node, for training. The network maps the pooled tensor s
// (N x C x 1 x 1) to the gate c = sigmoid(head_a(z) - head_b(z) + eps), z = reduce(s); each layer
// is a 1x1 convolution (a matrix product on 1x1 maps), optionally with a bias, then optionally a
// BatchNorm in training (batch statistics over the N samples) and an activation (PReLU with one
// shared or per-channel slope, ReLU, or none).
//
// Composed, that is three matrix products, up to three BatchNorm + activation nodes and the
// subtraction and sigmoid forward, each an operation and an autograd node of its own, and about
// twice as many backward, on tensors of N x C values (16 x 1024 at MSNet-50's stage 4). The fused
// node does the same arithmetic in one node: the matrix products through BLAS (the same calls),
// every BatchNorm and activation step in loops over column blocks (vectorised per ISA, AVX-512 /
// AVX2 / plain, chosen at run time; parallel over LibTorch's intra-op threads) and the sigmoid in
// place:
//   forward:  Y = X W^T (+ b); per column the batch mean and biased variance (double, two passes,
//             as LibTorch's BatchNorm), Z = gamma (Y - mean) invstd + beta, A = act(Z); the
//             running statistics updated as LibTorch's BatchNorm updates them (num_batches_tracked
//             counted, momentum or the cumulative average);
//   backward: the sigmoid's derivative, then per layer the activation's (and the slope's
//             gradient), BatchNorm's training-mode backward, and dW = dY^T X, dX = dY W.
// Gradients reach s and every parameter of the three layers, as the composed network gives them.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include "msconv/nn/batch_norm.h"

namespace msconv::nn {

// One 1x1 layer of the gate network, read from the modules (not owned).
struct GateLayer {
  torch::nn::Conv2dImpl* conv = nullptr;  // 1x1, groups 1, stride 1, no padding
  BatchNorm2dImpl* bn = nullptr;          // nullptr: none
  enum class Act { kNone, kReLU, kPReLU } act = Act::kNone;
  torch::Tensor slope;  // the PReLU weight ([1] or [out]) for kPReLU
};

// A layer from a conv [+ BatchNorm2d [+ PReLU or ReLU]] Sequential (convBnAct's) or a bare
// convolution module. Anything else: a layer with conv == nullptr (not fusable).
GateLayer gateLayer(const std::shared_ptr<torch::nn::Module>& module);

struct GateNet {
  GateLayer reduce, head_a, head_b;
  double eps = 0;  // added to head_a - head_b before the sigmoid (the authors' 1e-6)
};

// Whether fusedGate takes (net, s): s a float32 CPU tensor N x C x 1 x 1 with N >= 2, every
// parameter a float32 CPU tensor of the expected shape, every BatchNorm in training with affine
// parameters and running statistics, not folded and without a cross-rank sync; the hand-written
// kernels on (customKernels()).
bool gateFusable(const GateNet& net, const at::Tensor& s);

// c (N x C x 1 x 1) through the fused node. Precondition: gateFusable(net, s).
at::Tensor fusedGate(const GateNet& net, const at::Tensor& s);

}  // namespace msconv::nn
