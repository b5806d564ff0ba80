// ONNX out: a backbone as an ONNX face model, shaped as insightface's released models are
// (input "data", 1x3x112x112 RGB normalised as (x - 127.5) / 127.5; output "embedding", 1xD).
//
// The graph is LibTorch's own trace of the model's forward in eval mode (every architecture and
// operator the registry builds, through one code path), translated node by node into ONNX
// operators and written with the ONNX library's protobuf definitions. Nothing is folded that
// would change the numbers: BatchNorm stays BatchNormalization, the fused MSConv stage is
// recorded as its plain tensor operators, constants stay parameters (initialisers named as the
// checkpoint names them). Intermediate tensors the model hands to its tap (feature maps, fusion
// parts) keep their layer names ("stage1.0.op/fused"), so an ONNX reader can fetch them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "msconv/nn/backbone.h"

namespace msconv::model {

struct OnnxExportOptions {
  int opset = 11;              // insightface's torch2onnx default; 11 ... 17
  bool dynamic_batch = false;  // the batch axis named "None", as insightface's models have it
  std::string producer_version;
};

struct OnnxExportSummary {
  int opset = 0;
  int64_t nodes = 0;
  int64_t initializers = 0;
  int64_t parameters = 0;                 // floats in the initialisers
  std::vector<std::string> op_types;      // distinct ONNX operator types, sorted
  std::vector<std::string> named_values;  // intermediate tensors named after their layer
};

inline constexpr int kOnnxMinOpset = 11;
inline constexpr int kOnnxMaxOpset = 17;

// Writes `path` atomically. Throws msconv::Error naming the operator LibTorch recorded that has
// no ONNX form here, an opset out of range, or the file.
OnnxExportSummary exportOnnx(nn::BackboneImpl& model, const std::string& path,
                             const OnnxExportOptions& options = {});

}  // namespace msconv::model
