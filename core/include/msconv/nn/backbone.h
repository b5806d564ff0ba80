// Face backbones: MSNet-26/50/101 (the authors' ResNeXt-style frame) and insightface's iResNet,
// each with its 3x3 operator taken from the registry, plus CPU-scale presets. Parameter names
// follow the authors' and insightface's state_dicts, so their checkpoints load one to one.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>

#include <memory>
#include <string>
#include <vector>

#include "msconv/nn/spec.h"
#include "msconv/nn/tap.h"

namespace msconv::nn {

class BatchNorm2dImpl;

// A convolution whose output reaches nothing but the BatchNorm after it (foldable for inference).
using ConvBatchNorm = std::pair<torch::nn::Conv2dImpl*, BatchNorm2dImpl*>;

class BackboneImpl : public torch::nn::Module {
 public:
  // N x 3 x H x W images in [-1, 1] -> N x embedding. Tap layer names: "stem", "stageS.U" (unit
  // output), "stageS.U.op" (the 3x3 operator), "embedding".
  virtual torch::Tensor forward(const torch::Tensor& x, Tap* tap = nullptr) = 0;
  // Whether gradients flow through forward (an ONNX model run by OpenCV has none).
  virtual bool differentiable() const { return true; }

  const ArchSpec& arch() const { return arch_; }
  const OpSpec& op() const { return op_; }
  int embeddingDim() const { return arch_.embedding; }
  // Every tappable layer, in forward order.
  const std::vector<std::string>& layerNames() const { return layers_; }
  // The operator layers ("stage1.0.op", ...), in forward order.
  std::vector<std::string> operatorLayers() const;
  // The last unit of each stage ("stage1.2", ...): Grad-CAM's default layers.
  std::vector<std::string> stageOutputs() const;
  // Input size the architecture expects (iResNet's head is sized for 112 x 112).
  int inputSize() const { return 112; }
  // Whether nn::prepareInference made this the inference form (BatchNorm folded, channels-last):
  // then run it without gradients, on channels-last input (nn::inferenceInput).
  bool inferenceForm() const { return inference_form_; }
  void markInferenceForm() { inference_form_ = true; }
  // The convolution -> BatchNorm pairs its forward composes outside conv + BN Sequentials
  // (nn::convBnAct's, which nn::prepareInference finds by itself).
  virtual std::vector<ConvBatchNorm> convBatchNormPairs() { return {}; }

 protected:
  ArchSpec arch_;
  OpSpec op_;
  std::vector<std::string> layers_;
  bool inference_form_ = false;
};
using Backbone = std::shared_ptr<BackboneImpl>;

// Stores every 4-d parameter and buffer channels-last (NHWC), oneDNN's fast layout on CPU for
// narrow layers; feed it channels-last input too. Gradients and optimizer state follow the layout.
void toChannelsLast(torch::nn::Module& module);

// Builds an untrained backbone; throws msconv::Error for impossible combinations.
Backbone makeBackbone(const ArchSpec& arch, const OpSpec& op);
Backbone makeBackbone(const std::string& arch, const std::string& op = {});

}  // namespace msconv::nn
