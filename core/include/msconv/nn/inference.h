// The inference form of a trained backbone, for evaluation and inspection without gradients:
// every BatchNorm that follows a convolution folded into that convolution's weight and bias,
// parameters and activations channels-last, run without autograd's bookkeeping. Its embeddings
// equal the eval-mode training graph's within float rounding (1e-5 relative), and so do its
// tapped tensors: the folded BatchNorm's output is the convolution's.
#pragma once

#include "msconv/nn/backbone.h"

namespace msconv::nn {

struct InferenceOptions {
  bool fold_batchnorm = true;
  bool channels_last = true;
};

struct InferenceInfo {
  int folded = 0;              // BatchNorms folded into their convolution
  bool channels_last = false;  // parameters stored channels-last
};

// Turns `model` into its inference form in place (eval mode; irreversible: a folded BatchNorm
// refuses training). A model that has no such form (an ONNX file run by OpenCV) is left as it is.
InferenceInfo prepareInference(BackboneImpl& model, const InferenceOptions& o = {});

// A copy of `model` in inference form; `model` itself is not changed. Returns `model` itself
// when it has no inference form (an ONNX file run by OpenCV) or is in inference form already.
Backbone inferenceCopy(const Backbone& model, const InferenceOptions& o = {},
                       InferenceInfo* info = nullptr);

// The input as the model runs it best: channels-last for the inference form, else as given.
torch::Tensor inferenceInput(const BackboneImpl& model, const torch::Tensor& x);

}  // namespace msconv::nn
