#include "msconv/config/config.h"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "msconv/error.h"
#include "msconv/nn/spec.h"

namespace msconv::config {
namespace {

enum class Type { kInt, kReal, kBool, kText, kList };

struct KeyDef {
  const char* key;
  Type type;
  ConfigValue value;
  const char* help;
  double lo = -1e300, hi = 1e300;
  std::vector<std::string> choices = {};
};

const std::vector<KeyDef>& schema() {
  static const std::vector<KeyDef> s = {
      {"model.arch", Type::kText, std::string("msnet50"), "architecture (msconv info --list)"},
      {"model.op", Type::kText, std::string(""), "3x3 operator; empty: the architecture's default"},
      {"data.train", Type::kText, std::string("synthetic"),
       "training set: .rec, identity folder, or 'synthetic' (generated in the workspace)"},
      {"data.val", Type::kList, std::vector<std::string>{"synthetic"},
       "verification .bin files (comma-separated); 'synthetic' = the synthetic set's val.bin"},
      {"data.threads", Type::kInt, int64_t{2}, "loader threads", 1, 64},
      {"data.flip", Type::kBool, true, "random horizontal flip"},
      {"data.channels_last", Type::kBool, false,
       "channels-last tensors (faster on CPU for narrow nets)"},
      {"data.synthetic_identities", Type::kInt, int64_t{200}, "identities of the synthetic set", 2,
       1e7},
      {"data.synthetic_images_per_id", Type::kInt, int64_t{40}, "images per synthetic identity", 1,
       1e5},
      {"data.synthetic_seed", Type::kInt, int64_t{-1},
       "seed of the synthetic set (-1: the run's seed); a study's seeds share one set", -1, 1e18},
      {"train.batch_size", Type::kInt, int64_t{128},
       "samples per step, over every rank (each rank loads batch_size / ranks)", 2, 1e6},
      {"train.epochs", Type::kInt, int64_t{20}, "epochs", 1, 1e6},
      {"train.max_steps", Type::kInt, int64_t{0}, "stop after this many steps (0: epochs decide)",
       0, 1e12},
      {"train.lr", Type::kReal, 0.02, "initial learning rate", 0, 1e6},
      {"train.lr_min", Type::kReal, 5e-6, "floor of the cosine schedule", 0, 1e6},
      {"train.momentum", Type::kReal, 0.9, "SGD momentum", 0, 1},
      {"train.weight_decay", Type::kReal, 5e-4, "SGD weight decay", 0, 1},
      {"train.schedule",
       Type::kText,
       std::string("cosine"),
       "cosine | poly | constant",
       -1e300,
       1e300,
       {"cosine", "poly", "constant"}},
      {"train.warmup_epochs", Type::kReal, 0.0, "linear warm-up (poly schedule and others)", 0,
       1e6},
      {"train.clip_grad", Type::kReal, 5.0, "gradient norm clip (0: off)", 0, 1e12},
      {"train.accum", Type::kInt, int64_t{1}, "batches accumulated per optimizer step", 1, 1024},
      {"train.threads", Type::kInt, int64_t{0}, "LibTorch intra-op threads (0: every core)", 0,
       1024},
      {"train.amp", Type::kBool, false,
       "mixed precision: autocast and dynamic loss scaling (needs train.device=cuda)"},
      {"train.device", Type::kText, std::string("cpu"), "cpu, cuda or cuda:N"},
      {"train.sync_bn", Type::kBool, false,
       "several ranks: BatchNorm statistics over every rank's samples (nn.SyncBatchNorm)"},
      {"train.dist_timeout", Type::kReal, 60.0,
       "several ranks: seconds before a rank that died or hangs stops the others", 1, 1e6},
      {"train.log_every", Type::kInt, int64_t{10}, "steps between logged events", 1, 1e9},
      {"train.val_every", Type::kInt, int64_t{0}, "steps between validations (0: each epoch)", 0,
       1e12},
      {"train.checkpoint_every", Type::kInt, int64_t{0},
       "steps between checkpoints (0: each epoch)", 0, 1e12},
      {"train.keep_last", Type::kInt, int64_t{3}, "step checkpoints kept (plus last and best)", 1,
       1000},
      {"loss.type",
       Type::kText,
       std::string("arcface"),
       "arcface | cosface | cml | combined | softmax",
       -1e300,
       1e300,
       {"arcface", "cosface", "cml", "combined", "softmax"}},
      {"loss.s", Type::kReal, 64.0, "logit scale", 0.001, 1e6},
      {"loss.m1", Type::kReal, -1.0, "angular multiplier (-1: the preset's)", -1, 10},
      {"loss.m2", Type::kReal, -1.0, "additive angular margin (-1: the preset's)", -1, 3.2},
      {"loss.m3", Type::kReal, -1.0, "additive cosine margin (-1: the preset's)", -1, 2},
      {"loss.sample_rate", Type::kReal, 1.0, "Partial FC class sampling rate", 1e-6, 1},
      {"telemetry.every", Type::kInt, int64_t{20},
       "steps between per-layer telemetry records for msconv-scope (0: off)", 0, 1e9},
      {"seed", Type::kInt, int64_t{0}, "seed of everything random", 0, 9.2e18},
  };
  return s;
}

const KeyDef& def(const std::string& key) {
  for (const auto& d : schema())
    if (key == d.key) return d;
  std::string known;
  for (const auto& d : schema()) known += std::string(known.empty() ? "" : ", ") + d.key;
  throw Error("config: unknown key '" + key + "' (keys: " + known + ")");
}

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

ConfigValue fromJsonValue(const KeyDef& d, const nlohmann::json& v, const std::string& where) {
  auto bad = [&](const char* want) {
    return Error(where + "'" + d.key + "' must be " + want + ", got " + v.dump());
  };
  switch (d.type) {
    case Type::kInt:
      // Within int64's range only: beyond it the conversions below are undefined (floats) or
      // wrap (unsigned); every integer key's range lies well inside.
      if (v.is_number_unsigned() && v.get<uint64_t>() <= uint64_t{INT64_MAX})
        return static_cast<int64_t>(v.get<uint64_t>());
      if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<int64_t>();
      if (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()) &&
          std::fabs(v.get<double>()) < 9.2e18)
        return static_cast<int64_t>(v.get<double>());
      throw bad("an integer (at most 9.2e18 in magnitude)");
    case Type::kReal:
      if (v.is_number()) return v.get<double>();
      throw bad("a number");
    case Type::kBool:
      if (v.is_boolean()) return v.get<bool>();
      throw bad("true or false");
    case Type::kText:
      if (v.is_string()) return v.get<std::string>();
      throw bad("a string");
    case Type::kList:
      if (v.is_string()) return splitList(v.get<std::string>());
      if (v.is_array()) {
        std::vector<std::string> out;
        for (const auto& x : v) {
          if (!x.is_string()) throw bad("a list of strings");
          out.push_back(x.get<std::string>());
        }
        return out;
      }
      throw bad("a list of strings");
  }
  throw bad("valid");
}

void flatten(const nlohmann::json& j, const std::string& prefix,
             std::vector<std::pair<std::string, nlohmann::json>>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object())
      flatten(*it, key, out);
    else
      out.emplace_back(key, *it);
  }
}

}  // namespace

Config::Config() {
  for (const auto& d : schema()) values_[d.key] = d.value;
}

void Config::validate(const std::string& key) const {
  const KeyDef& d = def(key);
  const ConfigValue& v = values_.at(key);
  double x = 0;
  if (d.type == Type::kInt) x = static_cast<double>(std::get<int64_t>(v));
  if (d.type == Type::kReal) x = std::get<double>(v);
  if ((d.type == Type::kInt || d.type == Type::kReal) && (!(x >= d.lo) || !(x <= d.hi))) {
    std::ostringstream os;
    os << "config: '" << key << "' = " << x << " is outside [" << d.lo << ", " << d.hi << "]";
    throw Error(os.str());
  }
  if (!d.choices.empty()) {
    const auto& s = std::get<std::string>(v);
    if (std::find(d.choices.begin(), d.choices.end(), s) == d.choices.end()) {
      std::string c;
      for (const auto& x2 : d.choices) c += (c.empty() ? "" : ", ") + x2;
      throw Error("config: '" + key + "' = '" + s + "' is not one of " + c);
    }
  }
  // Architecture and operator texts are checked as the model builder reads them.
  try {
    if (key == "model.arch") nn::parseArch(std::get<std::string>(v));
    if (key == "model.op" && !std::get<std::string>(v).empty())
      nn::parseOpSpec(std::get<std::string>(v));
  } catch (const Error& e) {
    throw Error("config: '" + key + "': " + e.what());
  }
}

void Config::set(const std::string& key, const std::string& value) {
  const KeyDef& d = def(key);
  auto bad = [&](const char* want) {
    return Error("config: '" + key + "' must be " + want + ", got '" + value + "'");
  };
  // toJson() (config.json, the run store, checkpoints) can only print UTF-8 text.
  try {
    (void)nlohmann::json(value).dump();
  } catch (const nlohmann::json::type_error&) {
    throw bad("UTF-8 text");
  }
  try {
    size_t used = 0;
    switch (d.type) {
      case Type::kInt: {
        const long long v = std::stoll(value, &used);
        if (used != value.size()) throw bad("an integer");
        values_[key] = static_cast<int64_t>(v);
        break;
      }
      case Type::kReal: {
        const double v = std::stod(value, &used);
        if (used != value.size()) throw bad("a number");
        values_[key] = v;
        break;
      }
      case Type::kBool:
        if (value == "true" || value == "1" || value == "yes")
          values_[key] = true;
        else if (value == "false" || value == "0" || value == "no")
          values_[key] = false;
        else
          throw bad("true or false");
        break;
      case Type::kText:
        values_[key] = value;
        break;
      case Type::kList:
        values_[key] = splitList(value);
        break;
    }
  } catch (const std::invalid_argument&) {
    throw bad(d.type == Type::kInt ? "an integer" : "a number");
  } catch (const std::out_of_range&) {
    throw bad("a representable number");
  }
  validate(key);
}

Config Config::fromJson(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e999
    throw Error(source + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(source + ": the configuration must be a JSON object");
  Config c;
  std::vector<std::pair<std::string, nlohmann::json>> flat;
  flatten(j, "", flat);
  for (const auto& [key, v] : flat) {
    const KeyDef* d = nullptr;
    try {
      d = &def(key);
    } catch (const Error& e) {
      throw Error(source + ": " + e.what());
    }
    c.values_[key] = fromJsonValue(*d, v, source + ": ");
    try {
      c.validate(key);
    } catch (const Error& e) {
      throw Error(source + ": " + e.what());
    }
  }
  return c;
}

Config Config::load(const std::string& path, const std::vector<std::string>& sets) {
  Config c;
  if (!path.empty()) {
    std::ifstream in(path);
    if (!in) throw Error(path + ": cannot open configuration file");
    std::stringstream ss;
    ss << in.rdbuf();
    c = fromJson(ss.str(), path);
  }
  for (const auto& s : sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("a setting must be key=value, got '" + s + "'");
    c.set(s.substr(0, eq), s.substr(eq + 1));
  }
  return c;
}

int64_t Config::integer(const std::string& key) const {
  return std::get<int64_t>(values_.at(def(key).key));
}
double Config::real(const std::string& key) const {
  return std::get<double>(values_.at(def(key).key));
}
bool Config::flag(const std::string& key) const {
  return std::get<bool>(values_.at(def(key).key));
}
const std::string& Config::text(const std::string& key) const {
  return std::get<std::string>(values_.at(def(key).key));
}
const std::vector<std::string>& Config::list(const std::string& key) const {
  return std::get<std::vector<std::string>>(values_.at(def(key).key));
}

std::string Config::toJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, v] : values_) {
    nlohmann::json* node = &j;
    std::stringstream ss(key);
    std::vector<std::string> parts;
    for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
    for (size_t i = 0; i + 1 < parts.size(); ++i) node = &(*node)[parts[i]];
    std::visit([&](const auto& x) { (*node)[parts.back()] = x; }, v);
  }
  return j.dump(2);
}

RunSettings Config::settings() const {
  RunSettings r;
  r.model.arch = text("model.arch");
  r.model.op = text("model.op");
  r.data.train = text("data.train");
  r.data.val = list("data.val");
  r.data.threads = static_cast<int>(integer("data.threads"));
  r.data.flip = flag("data.flip");
  r.data.channels_last = flag("data.channels_last");
  r.seed = static_cast<uint64_t>(integer("seed"));
  const int64_t synth_seed = integer("data.synthetic_seed");
  r.data.synthetic = {integer("data.synthetic_identities"), integer("data.synthetic_images_per_id"),
                      synth_seed < 0 ? r.seed : static_cast<uint64_t>(synth_seed)};
  auto& t = r.train;
  t.batch_size = integer("train.batch_size");
  t.epochs = integer("train.epochs");
  t.max_steps = integer("train.max_steps");
  t.accum = integer("train.accum");
  t.lr = real("train.lr");
  t.lr_min = real("train.lr_min");
  t.momentum = real("train.momentum");
  t.weight_decay = real("train.weight_decay");
  t.warmup_epochs = real("train.warmup_epochs");
  t.clip_grad = real("train.clip_grad");
  t.schedule = text("train.schedule");
  t.device = text("train.device");
  t.threads = static_cast<int>(integer("train.threads"));
  t.amp = flag("train.amp");
  t.sync_bn = flag("train.sync_bn");
  t.dist_timeout = real("train.dist_timeout");
  t.log_every = integer("train.log_every");
  t.val_every = integer("train.val_every");
  t.checkpoint_every = integer("train.checkpoint_every");
  t.keep_last = integer("train.keep_last");
  r.loss.type = text("loss.type");
  r.loss.s = real("loss.s");
  r.loss.m1 = real("loss.m1");
  r.loss.m2 = real("loss.m2");
  r.loss.m3 = real("loss.m3");
  r.loss.sample_rate = real("loss.sample_rate");
  r.telemetry_every = integer("telemetry.every");
  return r;
}

std::vector<std::pair<std::string, std::string>> Config::keys() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& d : schema()) out.emplace_back(d.key, d.help);
  return out;
}

}  // namespace msconv::config
