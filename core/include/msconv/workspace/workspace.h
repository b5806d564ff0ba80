// A workspace: the folder where runs live, and the one owner of its layout.
//
//   ROOT/runs.sqlite        the run store (store::RunStore)
//   ROOT/runs/NAME/         one folder per run: train.log, config.json, last.ckpt, best.ckpt,
//                           step-N.ckpt, telemetry.bin
//   ROOT/datasets/          synthetic sets generated on first use, keyed by size and seed
//   ROOT/lab-queue.json     the workbench's run queue
//
// No LibTorch here: the CLI, the workbench's widgets and msconv-scope all use it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "msconv/config/config.h"

namespace msconv::store {
class RunStore;
}

namespace msconv::workspace {

// The workspace every front end uses when none is named.
inline constexpr const char* kDefaultWorkspace = "runs";

enum class RunFile { kLog, kConfig, kLastCheckpoint, kBestCheckpoint, kTelemetry };

class Workspace {
 public:
  explicit Workspace(std::string root = kDefaultWorkspace);
  const std::string& root() const { return root_; }

  std::string storeFile() const;
  // Opens (creating) the run store for a reader: read-only where it cannot be written (a full
  // disk). Throws msconv::Error naming the file.
  std::unique_ptr<store::RunStore> openStore() const;
  // The same for the commands that only read (runs, compare, reports): a workspace that does not
  // exist, or has no run store, is an error naming it instead of a new empty one.
  std::unique_ptr<store::RunStore> openExistingStore() const;
  // Throws msconv::Error unless the workspace folder and its run store exist.
  void requireExisting() const;
  // Opens (creating) the run store for a writer (a training run): one that cannot be written is
  // an error naming the file and the cause.
  std::unique_ptr<store::RunStore> openStoreToWrite() const;
  std::string queueFile() const;
  std::string datasetsDir() const;

  std::string runDir(const std::string& run) const;
  std::string runFile(const std::string& run, RunFile file) const;
  std::string stepCheckpoint(const std::string& run, int64_t step) const;
  // The checkpoint to evaluate or inspect: best.ckpt, else last.ckpt, else "".
  std::string runCheckpoint(const std::string& run) const;
  // The error a failed run stopped on, as its train.log recorded it ("" when there is none).
  std::string runError(const std::string& run) const;
  // The run folders under ROOT/runs, by name.
  std::vector<std::string> runFolders() const;
  // A checkpoint file as it is, or a run of the store (name or id): its best, else last,
  // checkpoint. Throws msconv::Error saying which of the two is missing.
  std::string resolveCheckpoint(const std::string& run_or_file) const;

  // The synthetic set of these settings, generated under datasets/ on first use and reused.
  // `progress` as data::SynthOptions takes it (when the set must be generated first).
  std::string syntheticSet(const config::SyntheticSettings& s,
                           const std::function<bool(int64_t, int64_t)>& progress = {}) const;
  // data.train and data.val with "synthetic" resolved in this workspace (generating the set).
  std::string trainingSet(const config::RunSettings& s,
                          const std::function<bool(int64_t, int64_t)>& progress = {}) const;
  std::vector<std::string> validationSets(const config::RunSettings& s) const;

  // The workspace a checkpoint of ROOT/runs/NAME/ belongs to; nullopt for a loose file.
  static std::optional<Workspace> ofCheckpoint(const std::string& checkpoint);

 private:
  std::string root_;
};

// One run waiting in the workbench's queue: its name and key=value settings, or (resume) a
// stopped or interrupted run of that name to continue from its last checkpoint; `processes`: the
// local ranks that train it as one run (as msconv train --nproc).
struct QueuedRun {
  std::string name;
  std::vector<std::string> settings;
  bool resume = false;
  int processes = 1;
  bool operator==(const QueuedRun& o) const {
    return name == o.name && settings == o.settings && resume == o.resume &&
           processes == o.processes;
  }
};

// The queue file: {"queue": [{"name": ..., "settings": ["key=value", ...], "resume": true?,
// "processes": N?}, ...]} ("resume" false and "processes" 1 when absent).
// read returns an empty queue for a missing file and throws msconv::Error naming the file and entry
// for one that is not a queue; write replaces the file atomically (temporary file, fsync, rename).
std::vector<QueuedRun> readQueue(const std::string& file);
void writeQueue(const std::string& file, const std::vector<QueuedRun>& queue);

}  // namespace msconv::workspace
