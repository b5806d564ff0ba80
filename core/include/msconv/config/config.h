// Training configuration: a JSON file (nested objects, read by nlohmann/json) plus --set
// key=value overrides, over defaults that are the paper's recipe. Every key is known and
// validated; errors name the key (and the file).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace msconv::config {

// The synthetic face set a configuration names ("synthetic" in data.train / data.val).
struct SyntheticSettings {
  int64_t identities = 0, images_per_id = 0;
  uint64_t seed =
      0;  // data.synthetic_seed, else the run's seed (the set is generated from seed + 1)
};

// A configuration read once into typed fields: the one place (with the schema) where the keys'
// names are written. Built by Config::settings(); every key has been validated by then.
struct RunSettings {
  struct Model {
    std::string arch, op;
  } model;
  struct Data {
    std::string train;
    std::vector<std::string> val;
    int threads = 0;
    bool flip = false, channels_last = false;
    SyntheticSettings synthetic;
  } data;
  struct Train {
    int64_t batch_size = 0, epochs = 0, max_steps = 0, accum = 1;
    double lr = 0, lr_min = 0, momentum = 0, weight_decay = 0, warmup_epochs = 0, clip_grad = 0;
    std::string schedule, device;
    int threads = 0;
    bool amp = false;
    bool sync_bn = false;      // batch statistics over every rank (nn.SyncBatchNorm)
    double dist_timeout = 60;  // seconds before a silent rank stops the others
    int64_t log_every = 1, val_every = 0, checkpoint_every = 0, keep_last = 1;
  } train;
  struct Loss {
    std::string type;
    double s = 0, m1 = -1, m2 = -1, m3 = -1, sample_rate = 1;  // m < 0: the preset's margin
  } loss;
  int64_t telemetry_every = 0;
  uint64_t seed = 0;
};

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
  RunSettings settings() const;
  // Every key with its one-line description, for --help.
  static std::vector<std::pair<std::string, std::string>> keys();

 private:
  void validate(const std::string& key) const;
  std::map<std::string, ConfigValue> values_;
};

}  // namespace msconv::config
