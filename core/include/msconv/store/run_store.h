// The workspace's run store: one SQLite database (WAL mode) holding runs (name, config, operator,
// status, times, host, source revision), metric series (step, wall time, key, value) and
// artifacts (checkpoints, figures). Every write is its own transaction, so a run killed with
// SIGKILL loses nothing it wrote; runs left "running" by a dead process are marked
// "interrupted" the next time the store opens.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct sqlite3;

namespace msconv::store {

// A run's status, stored as its name. A status this build does not know reads as kUnknown.
enum class RunStatus { kRunning, kDone, kStopped, kFailed, kInterrupted, kUnknown };
const char* statusName(RunStatus status);  // "running", "done", ...
RunStatus parseStatus(const std::string& name);

struct RunRow {
  int64_t id = 0;
  std::string name, config, arch, op, host, revision;
  RunStatus status = RunStatus::kRunning;
  double created = 0, ended = 0;  // unix seconds (ended 0 while running)
  int64_t pid = 0;
};

struct MetricRow {
  int64_t step = 0;
  double wall = 0;
  std::string key;
  double value = 0;
};

struct ArtifactRow {
  std::string kind, path;
  int64_t step = 0;
  double created = 0;
};

class RunStore {
 public:
  // kWrite: the store must take writes (a training run); one that cannot be written is an error.
  // kRead: the caller only reads (runs list, eval, compare, the workbench); the store opens for
  // writing where it can (so that runs of dead processes are marked interrupted) and read-only
  // where it cannot (a full disk, a read-only mount). A store locked by another process is
  // waited for, never taken as unwritable.
  enum class Access { kWrite, kRead };

  // Opens (creating) the database `file` (a workspace's is workspace::Workspace::storeFile()).
  // Throws msconv::Error naming the file.
  RunStore(const std::string& file, Access access);
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  const std::string& path() const { return path_; }
  // A new run named `name` (made unique with -2, -3... when taken), status "running".
  RunRow createRun(const std::string& name, const std::string& config, const std::string& arch,
                   const std::string& op);
  void setStatus(int64_t run, RunStatus status);
  void reopen(int64_t run);  // a resumed run: running again, this pid
  void addMetrics(int64_t run, int64_t step, const std::vector<std::pair<std::string, double>>& kv);
  // A resumed run repeats the steps after its checkpoint: their old rows go.
  void truncateMetrics(int64_t run, int64_t after_step);
  void addArtifact(int64_t run, const std::string& kind, const std::string& path, int64_t step);
  void removeArtifact(int64_t run, const std::string& path);

  std::vector<RunRow> runs() const;
  // By name or numeric id; throws msconv::Error when there is none.
  RunRow run(const std::string& name_or_id) const;
  std::optional<RunRow> findRun(const std::string& name_or_id) const;
  std::vector<MetricRow> metrics(int64_t run, const std::string& key = {}) const;
  std::vector<ArtifactRow> artifacts(int64_t run) const;

 private:
  void exec(const std::string& sql) const;
  // Runs `body` in one write transaction, rolled back when it throws.
  void transaction(const std::function<void()>& body);
  // Reopens an existing store that cannot be written (a full disk, a read-only mount) for
  // reading; writes then throw msconv::Error naming the file. False when it cannot be read either.
  bool openReadOnly();
  std::string path_;
  sqlite3* db_ = nullptr;
};

// "host" of this machine and the project's source revision (git describe at build time, or
// "unknown").
std::string hostName();
std::string sourceRevision();
// The project's version (CMake's PROJECT_VERSION), for --version.
std::string projectVersion();

}  // namespace msconv::store
