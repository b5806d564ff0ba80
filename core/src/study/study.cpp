#include "msconv/study/study.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "msconv/atomic_file.h"
#include "msconv/config/config.h"
#include "msconv/error.h"
#include "msconv/workspace/workspace.h"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace msconv::study {
namespace {

// A JSON scalar as `--set` spells it: strings as they are, numbers and booleans as printed.
std::string settingText(const ojson& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v.get<double>());
    // the shortest text that reads back as the same double
    for (int prec = 1; prec <= 17; ++prec) {
      char b[40];
      std::snprintf(b, sizeof b, "%.*g", prec, v.get<double>());
      if (std::stod(b) == v.get<double>()) return b;
    }
    return buf;
  }
  if (v.is_array()) {  // a list key (data.val): comma-separated, as --set takes it
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ",") + settingText(x, where);
    return out;
  }
  throw Error(where + " must be a string, number or boolean");
}

ojson valueJson(const std::string& text) {
  // Numbers and booleans stay numbers and booleans in the file; anything else is text.
  if (text == "true" || text == "false") return text == "true";
  if (!text.empty()) {
    size_t used = 0;
    try {
      const long long i = std::stoll(text, &used);
      if (used == text.size() && std::to_string(i) == text) return i;
      const double d = std::stod(text, &used);
      if (used == text.size() && text.find_first_not_of("0123456789.eE+-") == std::string::npos)
        return d;
    } catch (const std::exception&) {
    }
  }
  return text;
}

std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    out += ok ? c : (c == '*' ? 's' : '_');
  }
  return out;
}

std::string hex8(const std::string& text) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>((h >> 32) ^ h));
  return buf;
}

}  // namespace

Study parseStudy(const std::string& text, const std::string& source) {
  ojson j;
  try {
    j = ojson::parse(text);
  } catch (const ojson::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(source + ": a study must be a JSON object");
  static const std::set<std::string> known = {"name",      "base",       "axes",       "seeds",
                                              "reference", "checkpoint", "description"};
  for (const auto& [k, v] : j.items())
    if (!known.count(k))
      throw Error(source + ": unknown field '" + k +
                  "' (name, base, axes, seeds, reference, checkpoint, description)");
  Study s;
  if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty())
    throw Error(source + ": 'name' must be a non-empty string");
  s.name = j["name"].get<std::string>();
  if (slug(s.name) != s.name || s.name.size() > 64)
    throw Error(source + ": 'name' = '" + s.name +
                "': use letters, digits, '.', '-' and '_' (at most 64): it names runs and files");
  if (j.contains("base")) {
    if (!j["base"].is_object()) throw Error(source + ": 'base' must be an object of key: value");
    for (const auto& [k, v] : j["base"].items())
      s.base.emplace_back(k, settingText(v, source + ": base '" + k + "'"));
  }
  if (j.contains("axes")) {
    if (!j["axes"].is_object()) throw Error(source + ": 'axes' must be an object of key: [values]");
    for (const auto& [k, v] : j["axes"].items()) {
      if (!v.is_array() || v.empty())
        throw Error(source + ": axis '" + k + "' must be a non-empty list of values");
      std::vector<std::string> values;
      for (const auto& x : v) {
        const std::string t = settingText(x, source + ": axis '" + k + "'");
        if (std::find(values.begin(), values.end(), t) != values.end())
          throw Error(source + ": axis '" + k + "' lists '" + t + "' twice");
        values.push_back(t);
      }
      if (k == "seed")
        throw Error(source + ": 'seed' is not an axis: list the seeds under 'seeds'");
      s.axes.emplace_back(k, std::move(values));
    }
  }
  if (!j.contains("seeds") || !j["seeds"].is_array() || j["seeds"].empty())
    throw Error(source + ": 'seeds' must be a non-empty list of integers");
  for (const auto& x : j["seeds"]) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0)
      throw Error(source + ": 'seeds' must hold non-negative integers, got " + x.dump());
    const auto seed = x.get<uint64_t>();
    if (std::find(s.seeds.begin(), s.seeds.end(), seed) != s.seeds.end())
      throw Error(source + ": seed " + std::to_string(seed) + " is listed twice");
    s.seeds.push_back(seed);
  }
  if (j.contains("reference")) {
    if (!j["reference"].is_object())
      throw Error(source + ": 'reference' must be an object of axis: value");
    for (const auto& [k, v] : j["reference"].items()) {
      const std::string t = settingText(v, source + ": reference '" + k + "'");
      const std::string key = k;  // (a structured binding cannot be captured in C++17)
      const auto axis =
          std::find_if(s.axes.begin(), s.axes.end(), [&](const auto& a) { return a.first == key; });
      if (axis == s.axes.end())
        throw Error(source + ": reference names '" + k + "', which is not an axis");
      if (std::find(axis->second.begin(), axis->second.end(), t) == axis->second.end())
        throw Error(source + ": reference " + k + " = '" + t + "' is not among the axis' values");
      s.reference.emplace_back(k, t);
    }
  }
  if (j.contains("checkpoint")) {
    if (!j["checkpoint"].is_string() || (j["checkpoint"] != "best" && j["checkpoint"] != "last"))
      throw Error(source + ": 'checkpoint' must be \"best\" or \"last\"");
    s.checkpoint = j["checkpoint"].get<std::string>();
  }
  return s;
}

Study readStudy(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the study file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parseStudy(ss.str(), path);
}

std::string studyJson(const Study& s) {
  ojson j;
  j["name"] = s.name;
  j["base"] = ojson::object();
  for (const auto& [k, v] : s.base) j["base"][k] = valueJson(v);
  j["axes"] = ojson::object();
  for (const auto& [k, vs] : s.axes) {
    j["axes"][k] = ojson::array();
    for (const auto& v : vs) j["axes"][k].push_back(valueJson(v));
  }
  j["seeds"] = s.seeds;
  j["reference"] = ojson::object();
  for (const auto& [k, v] : s.reference) j["reference"][k] = valueJson(v);
  j["checkpoint"] = s.checkpoint;
  return j.dump(2) + "\n";
}

void writeStudy(const std::string& path, const Study& s) {
  writeFileAtomically(path, studyJson(s));
}

std::vector<std::string> presetNames() {
  return {"table5", "table6", "operators", "losses"};
}

Study preset(const std::string& name, const std::string& scale) {
  Study s;
  s.name = name;
  if (scale == "tiny") {
    // msnet-tiny on the embedded synthetic set: every seed trains on the same set (one set per
    // workspace), and a seed changes the initialisation and the data order.
    s.base = {{"model.arch", "msnet-tiny"},      {"train.batch_size", "64"},
              {"train.max_steps", "250"},        {"train.lr", "0.1"},
              {"train.val_every", "125"},        {"train.log_every", "5"},
              {"train.checkpoint_every", "125"}, {"data.synthetic_seed", "0"},
              {"telemetry.every", "0"}};
  } else if (scale == "small") {
    s.base = {{"model.arch", "msnet-small"},
              {"train.batch_size", "64"},
              {"train.epochs", "4"},
              {"train.lr", "0.1"},
              {"train.log_every", "10"},
              {"data.synthetic_seed", "0"},
              {"data.synthetic_identities", "500"}};
  } else {
    throw Error("study: scale '" + scale + "' is not tiny or small");
  }
  s.seeds = {0, 1, 2};
  if (name == "table5") {
    s.axes = {{"model.op",
               {"msconv-official:kernels=k3k3", "msconv-official:kernels=k3k5",
                "msconv-official:kernels=k5k3", "msconv-official:kernels=k5k7"}}};
    s.reference = {{"model.op", "msconv-official:kernels=k3k5"}};  // the paper's choice
  } else if (name == "table6") {
    s.axes = {{"model.op", {"msconv", "msconv*", "msconv-mo", "msconv-so", "msconv-mo-so"}}};
  } else if (name == "operators") {
    s.axes = {{"model.op",
               {"msconv-official", "msconv", "skconv", "scconv", "conv3x3", "ghost", "ghostv2",
                "pconv", "star"}}};
  } else if (name == "losses") {
    s.base.emplace_back("model.op", "msconv-official");
    s.axes = {{"loss.type", {"arcface", "cosface", "cml"}}};
  } else {
    std::string all;
    for (const auto& n : presetNames()) all += (all.empty() ? "" : ", ") + n;
    throw Error("study: no preset '" + name + "' (" + all + ")");
  }
  if (s.reference.empty()) s.reference = {{s.axes[0].first, s.axes[0].second[0]}};
  return s;
}

Study withOverrides(Study s, const std::vector<std::string>& overrides) {
  std::vector<Setting>& base = s.base;
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("study " + s.name + ": a setting must be key=value, got '" + o + "'");
    const std::string key = o.substr(0, eq);
    if (std::any_of(s.axes.begin(), s.axes.end(), [&](const auto& a) { return a.first == key; }))
      throw Error("study " + s.name + ": --set " + key + " would override the axis '" + key + "'");
    auto it = std::find_if(base.begin(), base.end(), [&](const auto& b) { return b.first == key; });
    if (it != base.end())
      it->second = o.substr(eq + 1);
    else
      base.emplace_back(key, o.substr(eq + 1));
  }
  return s;
}

std::vector<Cell> expand(const Study& study, const std::vector<std::string>& overrides) {
  const Study s = withOverrides(study, overrides);
  const std::vector<Setting>& base = s.base;
  for (const auto& [k, v] : base)
    if (k == "seed")
      throw Error("study " + s.name + ": 'seed' cannot be set in the base: list the seeds");
  // The cross product, the last axis fastest; a grid too large to train is refused (and never
  // enumerated: 10 axes of 10 values would be 1e10 cells).
  constexpr size_t kMaxRuns = 10000;
  size_t count = 1;
  for (const auto& a : s.axes) {
    if (count > kMaxRuns / a.second.size() || count * a.second.size() * s.seeds.size() > kMaxRuns)
      throw Error("study " + s.name + ": more than " + std::to_string(kMaxRuns) +
                  " runs (cells x seeds); axis '" + a.first + "' has " +
                  std::to_string(a.second.size()) + " values");
    count *= a.second.size();
  }
  std::vector<Cell> cells;
  for (size_t i = 0; i < count; ++i) {
    Cell c;
    size_t rest = i;
    std::vector<size_t> pick(s.axes.size());
    for (size_t a = s.axes.size(); a-- > 0;) {
      pick[a] = rest % s.axes[a].second.size();
      rest /= s.axes[a].second.size();
    }
    for (size_t a = 0; a < s.axes.size(); ++a) {
      const std::string& v = s.axes[a].second[pick[a]];
      c.axes.emplace_back(s.axes[a].first, v);
      c.id += (c.id.empty() ? "" : " / ") + (s.axes.size() > 1 ? s.axes[a].first + "=" : "") + v;
    }
    if (c.id.empty()) c.id = "base";
    std::vector<Setting> all = base;
    for (const auto& kv : c.axes) {
      all.erase(std::remove_if(all.begin(), all.end(),
                               [&](const auto& b) { return b.first == kv.first; }),
                all.end());
      all.emplace_back(kv);
    }
    for (const auto& [k, v] : all) c.config.push_back(k + "=" + v);
    std::vector<std::string> sorted = c.config;
    std::sort(sorted.begin(), sorted.end());
    std::string canon;
    for (const auto& x : sorted) canon += x + "\n";
    c.hash = hex8(canon);
    c.reference = s.reference.empty()
                      ? i == 0
                      : std::all_of(s.reference.begin(), s.reference.end(), [&](const Setting& r) {
                          return std::find(c.axes.begin(), c.axes.end(), r) != c.axes.end();
                        });
    // Validated as `msconv train --set` validates, for every seed, and the data it names must
    // exist: a value the trainer would refuse refuses the study before anything trains.
    for (uint64_t seed : s.seeds) {
      try {
        const auto rs = config::Config::load("", runSettings(c, seed)).settings();
        std::vector<std::pair<std::string, std::string>> paths;
        if (rs.data.train != "synthetic") paths.emplace_back("data.train", rs.data.train);
        for (const auto& v : rs.data.val)
          if (v != "synthetic") paths.emplace_back("data.val", v);
        for (const auto& [key, path] : paths)
          if (!fs::exists(path))
            throw Error("config: '" + key + "' = '" + path + "': no such file or folder");
      } catch (const Error& e) {
        std::string axes;
        for (const auto& [k, v] : c.axes) axes += (axes.empty() ? "" : ", ") + k + "=" + v;
        throw Error("study " + s.name + ": cell '" + c.id + "'" +
                    (axes.empty() ? "" : " (" + axes + ")") + ": " + e.what());
      }
    }
    cells.push_back(std::move(c));
  }
  if (std::count_if(cells.begin(), cells.end(), [](const Cell& c) { return c.reference; }) != 1)
    throw Error("study " + s.name + ": the reference names no single cell");
  return cells;
}

std::string runName(const Study& s, const Cell& c, uint64_t seed) {
  std::string values;
  for (const auto& [k, v] : c.axes) values += "-" + slug(v);
  if (values.size() > 48) values.resize(48);
  return s.name + values + "-" + c.hash + "-s" + std::to_string(seed);
}

std::vector<std::string> runSettings(const Cell& c, uint64_t seed) {
  std::vector<std::string> out = c.config;
  out.push_back("seed=" + std::to_string(seed));
  return out;
}

std::string CellRun::statusText() const {
  return exists ? store::statusName(row.status) : "pending";
}

std::vector<CellRun> cellRuns(const Study& s, const std::vector<Cell>& cells,
                              const workspace::Workspace& ws) {
  std::vector<CellRun> out;
  const auto db = ws.openStore();
  for (const auto& c : cells) {
    int64_t total = 0;
    for (const auto& kv : c.config)
      if (kv.rfind("train.max_steps=", 0) == 0) total = std::stoll(kv.substr(16));
    for (uint64_t seed : s.seeds) {
      CellRun r;
      r.cell = c.id;
      r.seed = seed;
      r.run = runName(s, c, seed);
      r.total_steps = total;
      if (auto row = db->findRun(r.run)) {
        r.exists = true;
        r.row = *row;
        const auto loss = db->metrics(row->id, "loss");
        if (!loss.empty()) r.step = loss.back().step;
        if (row->status == store::RunStatus::kFailed) r.error = ws.runError(row->name);
      }
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::string studyFile(const workspace::Workspace& ws, const std::string& name) {
  return (fs::path(ws.root()) / "studies" / (name + ".json")).string();
}

std::vector<std::string> studyNames(const workspace::Workspace& ws) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(ws.root()) / "studies", ec))
    if (e.path().extension() == ".json") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

Study loadStudy(const workspace::Workspace& ws, const std::string& name_or_file) {
  if (fs::is_regular_file(name_or_file)) return readStudy(name_or_file);
  const std::string f = studyFile(ws, name_or_file);
  if (!fs::exists(f)) {
    std::string known;
    for (const auto& n : studyNames(ws)) known += (known.empty() ? "" : ", ") + n;
    throw Error("study '" + name_or_file + "': no such file, and " + ws.root() +
                " keeps no study of that name" + (known.empty() ? "" : " (" + known + ")"));
  }
  return readStudy(f);
}

}  // namespace msconv::study
