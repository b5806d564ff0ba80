// ONNX in: a face model in ONNX (insightface's released models, MSConv Lab's own exports, any
// N x 3 x 112 x 112 -> N x D network) evaluated, compared and inspected beside MSConv Lab's own,
// with OpenCV's DNN module as the runtime. It is a Backbone, so every command and panel that
// loads a checkpoint takes an .onnx file as well (model::loadModel); it has no gradients, so the
// gradient CAM methods refuse it and the gradient-free ones (EigenCAM, ScoreCAM) explain it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "msconv/nn/backbone.h"

namespace msconv::model {

// Whether a path names an ONNX file (by its extension, as a user names it).
bool isOnnxPath(const std::string& path);

class OnnxBackboneImpl : public nn::BackboneImpl {
 public:
  // Reads the file (its graph with the ONNX library's classes, the network with OpenCV's DNN
  // reader). Throws msconv::Error naming the file: not ONNX, no 3 x 112 x 112 input, a node
  // OpenCV cannot run.
  explicit OnnxBackboneImpl(const std::string& path);
  ~OnnxBackboneImpl() override;

  // x: N x 3 x 112 x 112 RGB in [-1, 1], as MSConv Lab's loaders give. A tap receives the named
  // tensors it asks for (any node output of the graph) under the key "out".
  torch::Tensor forward(const torch::Tensor& x, nn::Tap* tap = nullptr) override;
  bool differentiable() const override { return false; }

  const std::string& path() const;
  // The input scaling the graph expects: (x - mean) / std on 0..255 pixels (insightface's rule:
  // a graph that starts with Sub and Mul normalises itself and takes raw pixels).
  double inputMean() const;
  double inputStd() const;
  std::string summary() const;     // producer, opset, input, output, normalisation
  int64_t parameterCount() const;  // floats in the graph's initialisers (its weights)

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace msconv::model
