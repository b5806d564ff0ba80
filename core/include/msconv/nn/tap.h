// An explicit tap: operators and backbones hand their intermediate tensors to it during forward.
// The C++ frontend has no forward hooks; inspection (feature maps, Grad-CAM) reads the tap instead.
// Tapped tensors stay in the autograd graph, so torch::autograd::grad can differentiate to them.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace msconv::nn {

class Tap {
 public:
  Tap() = default;                                // captures every layer
  explicit Tap(std::vector<std::string> layers);  // captures only these layers
  bool wants(const std::string& layer) const;
  void put(const std::string& layer, const std::string& key, const at::Tensor& value);
  bool has(const std::string& layer, const std::string& key) const;
  // The tensor, or msconv::Error naming the layer and key when it was not captured.
  const at::Tensor& get(const std::string& layer, const std::string& key) const;
  const std::map<std::string, std::map<std::string, at::Tensor>>& layers() const { return data_; }
  void clear() { data_.clear(); }

 private:
  std::set<std::string> only_;
  std::map<std::string, std::map<std::string, at::Tensor>> data_;
};

}  // namespace msconv::nn
