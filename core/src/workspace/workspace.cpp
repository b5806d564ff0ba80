#include "msconv/workspace/workspace.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "msconv/atomic_file.h"
#include "msconv/data/synth.h"
#include "msconv/error.h"
#include "msconv/store/run_store.h"

namespace fs = std::filesystem;

namespace msconv::workspace {

Workspace::Workspace(std::string root)
    : root_(root.empty() ? kDefaultWorkspace : std::move(root)) {}

std::string Workspace::storeFile() const {
  return (fs::path(root_) / "runs.sqlite").string();
}

std::unique_ptr<store::RunStore> Workspace::openStore() const {
  std::error_code ec;
  fs::create_directories(root_, ec);
  return std::make_unique<store::RunStore>(storeFile(), store::RunStore::Access::kRead);
}

void Workspace::requireExisting() const {
  if (!fs::is_directory(root_))
    throw Error("workspace '" + root_ +
                "' does not exist (--workspace names the folder `msconv train` writes runs into)");
  if (!fs::is_regular_file(storeFile()))
    throw Error("workspace '" + root_ + "' has no run store (" + storeFile() +
                "): no run was trained there");
}

std::unique_ptr<store::RunStore> Workspace::openExistingStore() const {
  requireExisting();
  return std::make_unique<store::RunStore>(storeFile(), store::RunStore::Access::kRead);
}

std::unique_ptr<store::RunStore> Workspace::openStoreToWrite() const {
  std::error_code ec;
  fs::create_directories(root_, ec);
  return std::make_unique<store::RunStore>(storeFile(), store::RunStore::Access::kWrite);
}

std::string Workspace::queueFile() const {
  return (fs::path(root_) / "lab-queue.json").string();
}

std::string Workspace::datasetsDir() const {
  return (fs::path(root_) / "datasets").string();
}

std::string Workspace::runDir(const std::string& run) const {
  return (fs::path(root_) / "runs" / run).string();
}

std::string Workspace::runFile(const std::string& run, RunFile file) const {
  const char* name = "";
  switch (file) {
    case RunFile::kLog:
      name = "train.log";
      break;
    case RunFile::kConfig:
      name = "config.json";
      break;
    case RunFile::kLastCheckpoint:
      name = "last.ckpt";
      break;
    case RunFile::kBestCheckpoint:
      name = "best.ckpt";
      break;
    case RunFile::kTelemetry:
      name = "telemetry.bin";
      break;
  }
  return (fs::path(runDir(run)) / name).string();
}

std::string Workspace::stepCheckpoint(const std::string& run, int64_t step) const {
  return (fs::path(runDir(run)) / ("step-" + std::to_string(step) + ".ckpt")).string();
}

std::string Workspace::runCheckpoint(const std::string& run) const {
  for (RunFile f : {RunFile::kBestCheckpoint, RunFile::kLastCheckpoint})
    if (fs::exists(runFile(run, f))) return runFile(run, f);
  return {};
}

std::string Workspace::runError(const std::string& run) const {
  std::ifstream in(runFile(run, RunFile::kLog));
  std::string line, last;
  while (std::getline(in, line))
    if (line.rfind("error: ", 0) == 0) last = line.substr(7);
  return last;
}

std::vector<std::string> Workspace::runFolders() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(fs::path(root_) / "runs", ec), end; !ec && it != end;
       it.increment(ec))
    if (it->is_directory()) out.push_back(it->path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string Workspace::resolveCheckpoint(const std::string& item) const {
  if (fs::is_regular_file(item)) return item;
  if (!fs::exists(storeFile()))
    throw Error("'" + item + "' is neither a checkpoint file nor a run (no run store at " +
                storeFile() + ")");
  const auto db = openStore();
  const auto run = db->findRun(item);
  if (!run) throw Error("'" + item + "' is neither a checkpoint file nor a run in " + db->path());
  const std::string ck = runCheckpoint(run->name);
  if (ck.empty())
    throw Error("run '" + run->name + "' has no checkpoint yet (" +
                runFile(run->name, RunFile::kLastCheckpoint) + ")");
  return ck;
}

std::string Workspace::syntheticSet(const config::SyntheticSettings& s,
                                    const std::function<bool(int64_t, int64_t)>& progress) const {
  const std::string dir = (fs::path(datasetsDir()) /
                           ("synthetic-" + std::to_string(s.identities) + "x" +
                            std::to_string(s.images_per_id) + "-seed" + std::to_string(s.seed)))
                              .string();
  if (!fs::exists(fs::path(dir) / "synth.json")) {
    data::SynthOptions o;
    o.identities = static_cast<int>(s.identities);
    o.images_per_id = static_cast<int>(s.images_per_id);
    o.seed = s.seed + 1;
    o.pairs = 1000;
    o.progress = progress;
    // A folder of this process's (and thread's) own: runs started together (a study's parallel
    // slots, ranks) may all generate the set; the first rename wins and the others discard theirs.
    const std::string tmp =
        dir + ".partial-" + std::to_string(::getpid()) + "-" +
        std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()) % 1000000);
    fs::remove_all(tmp);
    try {
      data::generateSyntheticFaces(tmp, o);
    } catch (...) {  // cancelled, or a full disk: nothing half-written stays
      std::error_code ec;
      fs::remove_all(tmp, ec);
      throw;
    }
    std::error_code ec;
    fs::rename(tmp, dir, ec);  // fails when another process's set is already there
    if (ec && !fs::exists(fs::path(dir) / "synth.json")) {
      fs::remove_all(dir, ec);  // a folder without its synth.json: left incomplete
      fs::rename(tmp, dir, ec);
    }
    fs::remove_all(tmp, ec);
    if (!fs::exists(fs::path(dir) / "synth.json"))
      throw Error(dir + ": could not put the generated synthetic set in place");
  }
  return dir;
}

std::string Workspace::trainingSet(const config::RunSettings& s,
                                   const std::function<bool(int64_t, int64_t)>& progress) const {
  return s.data.train == "synthetic" ? syntheticSet(s.data.synthetic, progress) : s.data.train;
}

std::vector<std::string> Workspace::validationSets(const config::RunSettings& s) const {
  std::vector<std::string> out;
  for (const auto& v : s.data.val)
    out.push_back(v == "synthetic" ? syntheticSet(s.data.synthetic) + "/val.bin" : v);
  return out;
}

std::optional<Workspace> Workspace::ofCheckpoint(const std::string& ckpt) {
  const fs::path runs = fs::absolute(ckpt).parent_path().parent_path();
  if (runs.filename() == "runs" && fs::exists(runs.parent_path() / "runs.sqlite"))
    return Workspace(runs.parent_path().string());
  return std::nullopt;
}

std::vector<QueuedRun> readQueue(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    if (!fs::exists(file)) return {};
    throw Error(file + ": cannot read");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e999
    throw Error(file + ": not a run queue (" + e.what() + ")");
  }
  if (!j.is_object() || !j.contains("queue") || !j["queue"].is_array())
    throw Error(file + ": not a run queue (no \"queue\" list)");
  std::vector<QueuedRun> out;
  for (size_t i = 0; i < j["queue"].size(); ++i) {
    const auto& o = j["queue"][i];
    auto bad = [&] {
      return Error(file + ": queue entry " + std::to_string(i) +
                   " needs \"name\" (text) and \"settings\" (a list of key=value texts)");
    };
    if (!o.is_object() || !o.contains("name") || !o["name"].is_string() ||
        !o.contains("settings") || !o["settings"].is_array())
      throw bad();
    QueuedRun r{o["name"].get<std::string>(), {}};
    for (const auto& s : o["settings"]) {
      if (!s.is_string()) throw bad();
      r.settings.push_back(s.get<std::string>());
    }
    if (o.contains("resume")) {
      if (!o["resume"].is_boolean())
        throw Error(file + ": queue entry " + std::to_string(i) +
                    ": \"resume\" must be true or false");
      r.resume = o["resume"].get<bool>();
    }
    if (o.contains("processes")) {
      const auto& n = o["processes"];
      if (!n.is_number_integer() || n.get<int64_t>() < 1 || n.get<int64_t>() > 1024)
        throw Error(file + ": queue entry " + std::to_string(i) +
                    ": \"processes\" must be a whole number from 1 to 1024");
      r.processes = static_cast<int>(n.get<int64_t>());
    }
    out.push_back(std::move(r));
  }
  return out;
}

void writeQueue(const std::string& file, const std::vector<QueuedRun>& queue) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& r : queue) {
    nlohmann::json item{{"name", r.name}, {"settings", r.settings}};
    if (r.resume) item["resume"] = true;
    if (r.processes != 1) item["processes"] = r.processes;
    items.push_back(item);
  }
  std::error_code ec;
  if (fs::path(file).has_parent_path()) fs::create_directories(fs::path(file).parent_path(), ec);
  writeFileAtomically(file, nlohmann::json{{"queue", items}}.dump(2) + "\n");
}

}  // namespace msconv::workspace
