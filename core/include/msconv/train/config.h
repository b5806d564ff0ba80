// Training configuration: a JSON file (nested objects, read by nlohmann/json) plus --set
// key=value overrides, over defaults that are the paper's recipe. Every key is known and
// validated; errors name the key (and the file).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace msconv::train {

using ConfigValue = std::variant<int64_t, double, bool, std::string, std::vector<std::string>>;

class Config {
 public:
  // Defaults: msnet50 / msconv-official, SGD lr 0.02 momentum 0.9 weight decay 5e-4, batch 128,
  // 20 epochs, cosine per iteration down to 5e-6, gradient norm clipped at 5, ArcFace s = 64,
  // flip augmentation; data.train = data.val = "synthetic" (the embedded face set).
  Config();
  // Reads `path` (may be empty) then applies each "key=value". Throws msconv::Error.
  static Config load(const std::string& path, const std::vector<std::string>& sets);

  void set(const std::string& key, const std::string& value);  // parses by the key's type
  int64_t integer(const std::string& key) const;
  double real(const std::string& key) const;
  bool flag(const std::string& key) const;
  const std::string& text(const std::string& key) const;
  const std::vector<std::string>& list(const std::string& key) const;
  // The whole configuration as a JSON document (nested objects).
  std::string toJson() const;
  static Config fromJson(const std::string& json, const std::string& source);
  // Every key with its one-line description, for --help.
  static std::vector<std::pair<std::string, std::string>> keys();

 private:
  void validate(const std::string& key) const;
  std::map<std::string, ConfigValue> values_;
};

}  // namespace msconv::train
