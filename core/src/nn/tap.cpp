#include "msconv/nn/tap.h"

#include "msconv/error.h"

namespace msconv::nn {

Tap::Tap(std::vector<std::string> layers) : only_(layers.begin(), layers.end()) {}

bool Tap::wants(const std::string& layer) const {
  return only_.empty() || only_.count(layer) > 0;
}

void Tap::put(const std::string& layer, const std::string& key, const at::Tensor& value) {
  if (wants(layer)) data_[layer][key] = value;
}

bool Tap::has(const std::string& layer, const std::string& key) const {
  auto it = data_.find(layer);
  return it != data_.end() && it->second.count(key) > 0;
}

const at::Tensor& Tap::get(const std::string& layer, const std::string& key) const {
  auto it = data_.find(layer);
  if (it == data_.end()) throw Error("tap: layer '" + layer + "' was not captured");
  auto jt = it->second.find(key);
  if (jt == it->second.end()) throw Error("tap: layer '" + layer + "' has no tensor '" + key + "'");
  return jt->second;
}

}  // namespace msconv::nn
