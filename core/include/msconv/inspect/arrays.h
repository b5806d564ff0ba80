#pragma once
// Raw arrays out: CAMs and feature maps as float32 NumPy .npy files in one folder, listed in
// DIR/index.json as {"file", "model", "layer", "method", "target", "shape"}. The layout of
// `msconv gradcam|featuremaps --save-arrays DIR` and of the workbench's Inspect export.

#include <ATen/core/Tensor.h>

#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

#include "msconv/inspect/inspect.h"

namespace msconv::inspect {

// A layer, row or method name as a file-name part: letters, digits, '.' and '_' kept; + * -
// spelled out (_plus_, _times_, _minus_); anything else '_'.
std::string arrayFilePart(const std::string& name);

class ArrayFolder {
 public:
  // Creates `dir` (and its parents); an Error naming it when that fails.
  explicit ArrayFolder(std::string dir);

  // `target`: the CAM's target as the user gave it ("cosine", "norm", "class:3"); empty for
  // feature maps (null in index.json).
  void add(const std::string& file, const at::Tensor& array, const std::string& model,
           const std::string& layer, const std::string& method, const std::string& target);
  void add(const std::string& file, const cv::Mat& map, const std::string& model,
           const std::string& layer, const std::string& method, const std::string& target);

  // One model's CAMs: m{index}_{method}_{layer}.npy per layer (112 x 112, as the figure draws
  // them), and m{index}_{method}_mean.npy when there is more than one layer.
  void addCams(int index, const std::string& model, const CamResult& cams,
               const std::string& method, const std::string& target);
  // A layer's branch maps, LAYER_ROW.npy (C x H x W at their native size) per row, and
  // LAYER_gate.npy (C) when the operator has a gate.
  void addBranchMaps(const std::string& model, const BranchMaps& maps);

  // Writes index.json (atomically) and returns every file written, index.json last.
  std::vector<std::string> finish();

 private:
  std::string dir_;
  std::vector<std::string> entries_;  // index.json's objects, serialised
  std::vector<std::string> written_;
};

}  // namespace msconv::inspect
