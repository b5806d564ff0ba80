#include "msconv/nn/backbone.h"

#include <torch/nn/functional/pooling.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include "msconv/nn/batch_norm.h"

#include <algorithm>
#include <cmath>

#include "msconv/error.h"
#include "msconv/nn/bn_prelu.h"
#include "msconv/nn/layers.h"
#include "msconv/nn/operators.h"
#include "msconv/nn/prelu.h"

namespace msconv::nn {
namespace {

int scaled(int channels, double width) {
  return std::max(8, static_cast<int>(std::lround(channels * width / 8.0)) * 8);
}

OpContext opContext(const ArchSpec& arch, int channels, int stride, std::string layer) {
  OpContext ctx;
  ctx.channels = channels;
  ctx.stride = stride;
  ctx.default_groups = arch.op_groups;
  ctx.default_min_dim = arch.op_min_dim;
  ctx.prelu = arch.prelu;
  ctx.act = arch.act;
  ctx.layer = std::move(layer);
  return ctx;
}

void checkImages(const torch::Tensor& x, const std::string& arch, int fixed_size) {
  if (x.dim() != 4 || x.size(1) != 3)
    throw Error(arch + ": expected N x 3 x H x W images, got a " + std::to_string(x.dim()) +
                "-d tensor");
  if (fixed_size > 0 && (x.size(2) != fixed_size || x.size(3) != fixed_size))
    throw Error(arch + ": expects " + std::to_string(fixed_size) + "x" +
                std::to_string(fixed_size) + " input, got " + std::to_string(x.size(2)) + "x" +
                std::to_string(x.size(3)));
}

// ---- MSNet ---------------------------------------------------------------------------------

// Bottleneck unit: conv1 (1x1 + BN + PReLU), conv2_msconv (the operator), conv3 (1x1 + BN),
// shortcut (1x1 stride + BN) when the shape changes, prelu after the add. Every PReLU has the
// frame's slopes (one shared slope in the authors' MSNet).
class MSUnitImpl : public torch::nn::Module {
 public:
  MSUnitImpl(const ArchSpec& arch, const OpSpec& op, int in, int mid, int out, int stride,
             const std::string& name)
      : name_(name) {
    conv1 = register_module("conv1", convBnAct({in, mid, 1}, preluAct(arch.prelu)));
    conv2 = register_module("conv2_msconv",
                            makeOperator(op, opContext(arch, mid, stride, name + ".op")));
    conv3 = register_module("conv3", convBnAct({mid, out, 1}, Act::kNone));
    if (in != out || stride != 1)
      shortcut = register_module("shortcut", convBnAct({in, out, 1, stride}, Act::kNone));
    act = register_module("prelu", makePReLU(arch.prelu, out));
  }
  // x_writable: the caller holds no other use of x, so the inference form may write the output
  // over it (the identity shortcut's add).
  torch::Tensor forward(const torch::Tensor& x, Tap* tap, bool x_writable) {
    const torch::Tensor h = conv2->forward(forwardConvBnAct(conv1, x), tap, name_ + ".op");
    const torch::Tensor y =
        shortcut ? forwardConvBnAddAct(conv3, h, forwardConvBnAct(shortcut, x), true, *act)
                 : forwardConvBnAddAct(conv3, h, x, x_writable, *act);
    if (tap) tap->put(name_, "out", y);
    return y;
  }

 private:
  std::string name_;
  torch::nn::Sequential conv1{nullptr}, conv3{nullptr}, shortcut{nullptr};
  Operator conv2;
  PReLU act{nullptr};
};

class MSNetImpl : public BackboneImpl {
 public:
  MSNetImpl(const ArchSpec& arch, const OpSpec& op) {
    arch_ = arch;
    op_ = op;
    const int stem = scaled(64, arch.width);
    basic_conv = register_module(
        "basic_conv", convBnAct({3, stem, 7, arch.stem_stride, 3}, preluAct(arch.prelu)));
    layers_.push_back("stem");
    const int full[4][3] = {{64, 128, 256}, {256, 256, 512}, {512, 512, 1024}, {1024, 1024, 2048}};
    int in = stem;
    for (int s = 0; s < 4; ++s) {
      const int mid = scaled(full[s][1], arch.width), out = scaled(full[s][2], arch.width);
      auto stage = std::make_shared<torch::nn::Module>();
      std::vector<std::shared_ptr<MSUnitImpl>> units;
      for (int u = 0; u < arch.blocks[s]; ++u) {
        const std::string name = "stage" + std::to_string(s + 1) + "." + std::to_string(u);
        auto unit =
            std::make_shared<MSUnitImpl>(arch, op, in, mid, out, u == 0 && s > 0 ? 2 : 1, name);
        stage->register_module(std::to_string(u), unit);
        units.push_back(unit);
        layers_.push_back(name + ".op");
        layers_.push_back(name);
        in = out;
      }
      register_module("stage_" + std::to_string(s + 1), stage);
      stages_.push_back(units);
    }
    classifier = register_module("classifier", CountedLinear(in, arch.embedding));
    layers_.push_back("embedding");
  }

  torch::Tensor forward(const torch::Tensor& x, Tap* tap) override {
    checkImages(x, arch_.name, 0);
    torch::Tensor y = forwardConvBnAct(basic_conv, x);
    if (tap) tap->put("stem", "out", y);
    y = torch::max_pool2d(y, 3, 2, 1);
    for (auto& stage : stages_)
      // Each unit's input is the previous one's output, held nowhere else unless tapped.
      for (auto& unit : stage) y = unit->forward(y, tap, tap == nullptr);
    y = classifier->forward(y.mean({2, 3}));
    if (tap) tap->put("embedding", "out", y);
    return y;
  }

 private:
  torch::nn::Sequential basic_conv{nullptr};
  std::vector<std::vector<std::shared_ptr<MSUnitImpl>>> stages_;
  CountedLinear classifier{nullptr};
};

// ---- iResNet -------------------------------------------------------------------------------

// IBasicBlock: bn1, conv1 (3x3), bn2, prelu, conv2 (the operator, carries the stride), bn3,
// + downsample (1x1 conv stride + BN) when the shape changes; no activation after the add.
class IBlockImpl : public torch::nn::Module {
 public:
  IBlockImpl(const ArchSpec& arch, const OpSpec& op, int in, int planes, int stride,
             const std::string& name)
      : name_(name) {
    bn1 = register_module("bn1", BatchNorm2d(in));
    conv1 = register_module("conv1", makeConv({in, planes, 3, 1, 1}));
    bn2 = register_module("bn2", BatchNorm2d(planes));
    act = register_module("prelu", makePReLU(arch.prelu, planes));
    conv2 =
        register_module("conv2", makeOperator(op, opContext(arch, planes, stride, name + ".op")));
    bn3 = register_module("bn3", BatchNorm2d(planes));
    if (in != planes || stride != 1)
      downsample = register_module("downsample", convBnAct({in, planes, 1, stride}, Act::kNone));
  }
  // conv1's output reaches bn2 alone.
  ConvBatchNorm conv1Bn2() { return {conv1.get(), bn2.get()}; }
  torch::Tensor forward(const torch::Tensor& x, Tap* tap) {
    torch::Tensor y = forwardConvFoldedAct(*conv1, *bn2, act.get(), forwardBnAct(*bn1, nullptr, x));
    y = forwardBnAct(*bn3, nullptr, conv2->forward(y, tap, name_ + ".op"));
    y = y + (downsample ? forwardConvBnAct(downsample, x) : x);
    if (tap) tap->put(name_, "out", y);
    return y;
  }

 private:
  std::string name_;
  BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  CountedConv2d conv1{nullptr};
  PReLU act{nullptr};
  Operator conv2;
  torch::nn::Sequential downsample{nullptr};
};

class IResNetImpl : public BackboneImpl {
 public:
  IResNetImpl(const ArchSpec& arch, const OpSpec& op) {
    arch_ = arch;
    op_ = op;
    const int stem = scaled(64, arch.width);
    conv1 = register_module("conv1", makeConv({3, stem, 3, arch.stem_stride, 1}));
    bn1 = register_module("bn1", BatchNorm2d(stem));
    act = register_module("prelu", makePReLU(arch.prelu, stem));
    layers_.push_back("stem");
    int in = stem;
    const int full[4] = {64, 128, 256, 512};
    for (int s = 0; s < 4; ++s) {
      const int planes = scaled(full[s], arch.width);
      auto layer = std::make_shared<torch::nn::Module>();
      std::vector<std::shared_ptr<IBlockImpl>> blocks;
      for (int b = 0; b < arch.blocks[s]; ++b) {
        const std::string name = "stage" + std::to_string(s + 1) + "." + std::to_string(b);
        auto block = std::make_shared<IBlockImpl>(arch, op, in, planes, b == 0 ? 2 : 1, name);
        layer->register_module(std::to_string(b), block);
        blocks.push_back(block);
        layers_.push_back(name + ".op");
        layers_.push_back(name);
        in = planes;
      }
      register_module("layer" + std::to_string(s + 1), layer);
      stages_.push_back(blocks);
    }
    bn2 = register_module("bn2", BatchNorm2d(in));
    // The head is sized for 112 x 112 input: 7 x 7 after four stride-2 stages (4 x 4 with a
    // stride-2 stem).
    int side = (112 + arch.stem_stride - 1) / arch.stem_stride;
    for (int s = 0; s < 4; ++s) side = (side + 1) / 2;
    fc = register_module("fc", CountedLinear(in * side * side, arch.embedding));
    features = register_module("features", BatchNorm1d(arch.embedding));
    // insightface freezes the embedding BN's scale at 1.
    features->weight.requires_grad_(false);
    layers_.push_back("embedding");
  }

  std::vector<ConvBatchNorm> convBatchNormPairs() override {
    std::vector<ConvBatchNorm> out{{conv1.get(), bn1.get()}};
    for (auto& stage : stages_)
      for (auto& block : stage) out.push_back(block->conv1Bn2());
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x, Tap* tap) override {
    checkImages(x, arch_.name, 112);
    torch::Tensor y = forwardConvFoldedAct(*conv1, *bn1, act.get(), x);
    if (tap) tap->put("stem", "out", y);
    for (auto& stage : stages_)
      for (auto& block : stage) y = block->forward(y, tap);
    y = fc->forward(bn2->forward(y).flatten(1));
    y = features->forward(y);
    if (tap) tap->put("embedding", "out", y);
    return y;
  }

 private:
  CountedConv2d conv1{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr};
  PReLU act{nullptr};
  std::vector<std::vector<std::shared_ptr<IBlockImpl>>> stages_;
  CountedLinear fc{nullptr};
  BatchNorm1d features{nullptr};
};

// ---- FasterNet ------------------------------------------------------------------------------

// FasterNet (JierunChen/FasterNet, fasternet.py) as its authors build it, with a 512-d embedding
// in place of the 1000-class classifier: patch_embed (KxK conv, stride K, K = stem_stride, + BN),
// stages.{0,2,4,6}.blocks.N (the operator: FasterNet's MLPBlock for "pconv"),
// stages.{1,3,5} (PatchMerging: 2x2 conv stride 2 + BN), avgpool_pre_head (pool, 1x1 conv to
// 1280, act), head (Linear to the embedding).
class FasterNetImpl : public BackboneImpl {
 public:
  FasterNetImpl(const ArchSpec& arch, const OpSpec& op) {
    arch_ = arch;
    op_ = op;
    const int stem = scaled(128, arch.width);
    auto embed = register_module("patch_embed", std::make_shared<torch::nn::Module>());
    proj_ =
        embed->register_module("proj", makeConv({3, stem, arch.stem_stride, arch.stem_stride, 0}));
    norm_ = embed->register_module("norm", BatchNorm2d(stem));
    layers_.push_back("stem");
    auto stages = register_module("stages", std::make_shared<torch::nn::Module>());
    int dim = stem;
    for (int s = 0; s < 4; ++s) {
      auto stage =
          stages->register_module(std::to_string(2 * s), std::make_shared<torch::nn::Module>());
      auto blocks = stage->register_module("blocks", std::make_shared<torch::nn::Module>());
      std::vector<Operator> ops;
      for (int b = 0; b < arch.blocks[s]; ++b) {
        const std::string name = "stage" + std::to_string(s + 1) + "." + std::to_string(b);
        ops.push_back(blocks->register_module(
            std::to_string(b), makeOperator(op, opContext(arch, dim, 1, name + ".op"))));
        layers_.push_back(name + ".op");
        layers_.push_back(name);
      }
      stages_.push_back(ops);
      if (s < 3) {
        auto merge = stages->register_module(std::to_string(2 * s + 1),
                                             std::make_shared<torch::nn::Module>());
        merges_.push_back({merge->register_module("reduction", makeConv({dim, 2 * dim, 2, 2, 0})),
                           merge->register_module("norm", BatchNorm2d(2 * dim))});
        dim *= 2;
      }
    }
    auto pre = register_module("avgpool_pre_head", std::make_shared<torch::nn::Module>());
    pre_head_ = pre->register_module("1", makeConv({dim, kFeatureDim, 1}));
    head_ = register_module("head", CountedLinear(kFeatureDim, arch.embedding));
    layers_.push_back("embedding");
  }

  std::vector<ConvBatchNorm> convBatchNormPairs() override {
    std::vector<ConvBatchNorm> out{{proj_.get(), norm_.get()}};
    for (auto& [conv, bn] : merges_) out.push_back({conv.get(), bn.get()});
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x, Tap* tap) override {
    checkImages(x, arch_.name, 0);
    torch::Tensor y = norm_->forward(proj_->forward(x));
    if (tap) tap->put("stem", "out", y);
    for (size_t s = 0; s < stages_.size(); ++s) {
      for (size_t b = 0; b < stages_[s].size(); ++b) {
        const std::string name = "stage" + std::to_string(s + 1) + "." + std::to_string(b);
        y = stages_[s][b]->forward(y, tap, name + ".op");
        if (tap) tap->put(name, "out", y);
      }
      if (s < merges_.size()) y = merges_[s].second->forward(merges_[s].first->forward(y));
    }
    y = pre_head_->forward(y.mean({2, 3}, true));
    y = arch_.act == FrameAct::kGELU ? torch::gelu(y) : torch::relu(y);
    y = head_->forward(y.flatten(1));
    if (tap) tap->put("embedding", "out", y);
    return y;
  }

 private:
  static constexpr int kFeatureDim = 1280;  // FasterNet's feature_dim, every variant
  CountedConv2d proj_{nullptr}, pre_head_{nullptr};
  BatchNorm2d norm_{nullptr};
  std::vector<std::vector<Operator>> stages_;
  std::vector<std::pair<CountedConv2d, BatchNorm2d>> merges_;
  CountedLinear head_{nullptr};
};

}  // namespace

std::vector<std::string> BackboneImpl::operatorLayers() const {
  std::vector<std::string> out;
  for (const auto& l : layers_)
    if (l.size() > 3 && l.compare(l.size() - 3, 3, ".op") == 0) out.push_back(l);
  return out;
}

std::vector<std::string> BackboneImpl::stageOutputs() const {
  std::vector<std::string> out;
  if (arch_.blocks.size() < 4) return out;  // a network of no known family (ONNX in)
  for (int s = 0; s < 4; ++s)
    out.push_back("stage" + std::to_string(s + 1) + "." + std::to_string(arch_.blocks[s] - 1));
  return out;
}

void toChannelsLast(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  for (auto& b : module.buffers())
    if (b.dim() == 4) b.set_data(b.contiguous(torch::MemoryFormat::ChannelsLast));
}

Backbone makeBackbone(const ArchSpec& arch, const OpSpec& op) {
  // parseArch checks these for text; a spec built in code gets the same words.
  const std::string where = "architecture '" + arch.name + "'";
  if (arch.blocks.size() != 4 ||
      std::any_of(arch.blocks.begin(), arch.blocks.end(), [](int b) { return b < 1; }))
    throw Error(where + ": option 'blocks' wants four unit counts of at least 1");
  if (!(arch.width > 0.0)) throw Error(where + ": option 'width' must be above 0");
  if (arch.op_groups < 1 || arch.op_min_dim < 1 || arch.embedding < 1 || arch.stem_stride < 1)
    throw Error(where + ": options G, L, embedding and stem_stride must be positive");
  switch (arch.family) {
    case Family::kMSNet:
      return std::make_shared<MSNetImpl>(arch, op);
    case Family::kIResNet:
      return std::make_shared<IResNetImpl>(arch, op);
    case Family::kFasterNet:
      return std::make_shared<FasterNetImpl>(arch, op);
  }
  throw Error("architecture '" + arch.name + "' has no implementation");
}

Backbone makeBackbone(const std::string& arch, const std::string& op) {
  const ArchSpec a = parseArch(arch);
  return makeBackbone(a, op.empty() ? defaultOpFor(a) : parseOpSpec(op));
}

}  // namespace msconv::nn
