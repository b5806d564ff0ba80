#include "msconv/store/run_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>

#include "msconv/error.h"
#include "store/fault_vfs.h"

namespace msconv::store {
namespace {

// SQLite's primary result code of an extended one.
int primary(int rc) {
  return rc & 0xff;
}

// Another connection holds the lock. SQLite answers SQLITE_BUSY without waiting in its busy
// handler where waiting could deadlock (a reader upgrading to a writer while another connection
// writes, two connections creating the same new database), so such statements are run again.
bool locked(int rc) {
  return primary(rc) == SQLITE_BUSY || primary(rc) == SQLITE_LOCKED;
}

// The file or its folder cannot be written: a full disk, a read-only mount or file, an I/O error.
bool cannotWrite(int rc) {
  switch (primary(rc)) {
    case SQLITE_READONLY:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      return true;
    default:
      return false;
  }
}

// How often and how long a statement that met a lock is tried again (on top of the busy
// handler's own wait): about 10 s in all.
constexpr int kLockedAttempts = 1000;
constexpr useconds_t kLockedPause = 10000;

// An error of the store that keeps SQLite's result code, so that the constructor can tell a full
// or read-only disk from a damaged file.
class SqlError : public Error {
 public:
  SqlError(const std::string& where, const std::string& cause, int rc)
      : Error(where + ": " + cause), cause_(cause), rc_(rc) {}
  int rc() const { return rc_; }
  const std::string& cause() const { return cause_; }

 private:
  std::string cause_;
  int rc_;
};

// What went wrong, as a person reads it: SQLite's text, with the system's cause of an I/O error
// ("disk I/O error (Input/output error)") and a full disk said the way every other writer says it.
std::string cause(sqlite3* db, int rc, const std::string& text) {
  if (primary(rc) == SQLITE_FULL) return std::strerror(ENOSPC);
  const int sys = lastFaultCause() ? lastFaultCause() : db ? sqlite3_system_errno(db) : 0;
  if (primary(rc) == SQLITE_IOERR && sys != 0) return text + " (" + std::strerror(sys) + ")";
  return text;
}

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::string& where) : db_(db), where_(where) {
    for (int attempt = 0;; ++attempt) {
      const int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr);
      if (rc == SQLITE_OK) return;
      if (locked(rc) && attempt < kLockedAttempts) {  // reading the schema met a lock
        ::usleep(kLockedPause);
        continue;
      }
      throw SqlError(where_, cause(db, rc, sqlite3_errmsg(db)), rc);
    }
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  bool step() {
    for (int attempt = 0;; ++attempt) {
      clearFaultCause();
      const int rc = sqlite3_step(s_);
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      if (locked(rc) && attempt < kLockedAttempts) {
        sqlite3_reset(s_);
        ::usleep(kLockedPause);
        continue;
      }
      throw SqlError(where_, cause(db_, rc, sqlite3_errmsg(db_)), rc);
    }
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t i(int c) const { return sqlite3_column_int64(s_, c); }
  double d(int c) const { return sqlite3_column_double(s_, c); }
  std::string t(int c) const {
    const auto* p = sqlite3_column_text(s_, c);
    return p ? reinterpret_cast<const char*>(p) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  std::string where_;
};

RunRow readRun(const Stmt& s) {
  RunRow r;
  r.id = s.i(0);
  r.name = s.t(1);
  r.config = s.t(2);
  r.arch = s.t(3);
  r.op = s.t(4);
  r.status = parseStatus(s.t(5));
  r.host = s.t(6);
  r.revision = s.t(7);
  r.created = s.d(8);
  r.ended = s.d(9);
  r.pid = s.i(10);
  return r;
}

const char* kRunColumns = "id, name, config, arch, op, status, host, revision, created, ended, pid";

}  // namespace

std::string hostName() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

const char* statusName(RunStatus status) {
  switch (status) {
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kDone:
      return "done";
    case RunStatus::kStopped:
      return "stopped";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kInterrupted:
      return "interrupted";
    case RunStatus::kUnknown:
      break;
  }
  return "unknown";
}

RunStatus parseStatus(const std::string& name) {
  for (RunStatus s : {RunStatus::kRunning, RunStatus::kDone, RunStatus::kStopped,
                      RunStatus::kFailed, RunStatus::kInterrupted})
    if (name == statusName(s)) return s;
  return RunStatus::kUnknown;
}

const char* buildRevision();  // revision.cpp, generated at build time
const char* buildVersion();

std::string sourceRevision() {
  return buildRevision();
}

std::string projectVersion() {
  return buildVersion();
}

RunStore::RunStore(const std::string& file, Access access) : path_(file) {
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      faultVfsName()) != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw Error(path_ + ": cannot open run store: " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    exec(
        "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, "
        "config TEXT, arch TEXT, op TEXT, status TEXT, host TEXT, revision TEXT, created REAL, "
        "ended REAL DEFAULT 0, pid INTEGER)");
    exec(
        "CREATE TABLE IF NOT EXISTS metrics (run INTEGER NOT NULL, step INTEGER, wall REAL, "
        "key TEXT, value REAL)");
    exec("CREATE INDEX IF NOT EXISTS metrics_run_key ON metrics (run, key, step)");
    exec(
        "CREATE TABLE IF NOT EXISTS artifacts (run INTEGER NOT NULL, kind TEXT, path TEXT, "
        "step INTEGER, created REAL)");
  } catch (const SqlError& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    // A store that exists but cannot be written (a full disk, a read-only mount) still reads, for
    // those that only read. A lock held too long, or a damaged file, is an error for everyone.
    if (access == Access::kWrite && cannotWrite(e.rc()))
      throw Error(path_ + ": cannot write the run store: " + e.cause());
    if (access == Access::kWrite || !cannotWrite(e.rc()) || !openReadOnly())
      throw Error(path_ + ": not a usable run store (" + e.cause() + ")");
    return;
  }
  // Runs of this host whose process is gone were interrupted.
  const std::string host = hostName();
  for (const auto& r : runs()) {
    if (r.status != RunStatus::kRunning || r.host != host) continue;
    if (r.pid > 0 && ::kill(static_cast<pid_t>(r.pid), 0) == 0) continue;
    if (r.pid > 0 && errno == EPERM) continue;
    try {
      setStatus(r.id, RunStatus::kInterrupted);
    } catch (const Error&) {  // no room to write it: the next writable open marks it
      break;
    }
  }
}

bool RunStore::openReadOnly() {
  // Read-only first; then immutable (no -shm / -wal files to create, which a full disk refuses).
  const std::string uri = "file:" + path_ + "?immutable=1";
  for (const auto& [name, flags] :
       {std::pair<std::string, int>{path_, SQLITE_OPEN_READONLY},
        std::pair<std::string, int>{uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI}}) {
    if (!std::filesystem::exists(path_)) return false;
    if (sqlite3_open_v2(name.c_str(), &db_, flags, faultVfsName()) == SQLITE_OK) {
      sqlite3_busy_timeout(db_, 5000);
      try {
        exec("SELECT count(*) FROM runs");
        return true;
      } catch (const Error&) {
      }
    }
    sqlite3_close(db_);
    db_ = nullptr;
  }
  return false;
}

RunStore::~RunStore() {
  if (db_) sqlite3_close(db_);
}

void RunStore::exec(const std::string& sql) const {
  for (int attempt = 0;; ++attempt) {
    char* err = nullptr;
    clearFaultCause();
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return;
    const std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    // Inside a transaction the statement fails alone and the caller rolls back; outside one the
    // whole statement runs again.
    if (locked(rc) && attempt < kLockedAttempts && sqlite3_get_autocommit(db_)) {
      ::usleep(kLockedPause);
      continue;
    }
    throw SqlError(path_, cause(db_, rc, msg), rc);
  }
}

RunRow RunStore::createRun(const std::string& name, const std::string& config,
                           const std::string& arch, const std::string& op) {
  std::string unique = name;
  // One transaction: two processes creating runs of one name at once get two names.
  transaction([&] {
    unique = name;
    for (int k = 2; findRun(unique); ++k) unique = name + "-" + std::to_string(k);
    Stmt s(db_,
           "INSERT INTO runs (name, config, arch, op, status, host, revision, created, pid) "
           "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?)",
           path_);
    s.bind(1, unique).bind(2, config).bind(3, arch).bind(4, op).bind(5, hostName());
    s.bind(6, sourceRevision()).bind(7, now()).bind(8, static_cast<int64_t>(::getpid()));
    s.step();
  });
  return run(unique);
}

void RunStore::setStatus(int64_t run, RunStatus status) {
  Stmt s(db_, "UPDATE runs SET status = ?, ended = ? WHERE id = ?", path_);
  s.bind(1, std::string(statusName(status)))
      .bind(2, status == RunStatus::kRunning ? 0.0 : now())
      .bind(3, run)
      .step();
}

void RunStore::reopen(int64_t run) {
  Stmt s(db_, "UPDATE runs SET status = 'running', ended = 0, pid = ?, host = ? WHERE id = ?",
         path_);
  s.bind(1, static_cast<int64_t>(::getpid())).bind(2, hostName()).bind(3, run).step();
}

void RunStore::truncateMetrics(int64_t run, int64_t after_step) {
  Stmt s(db_, "DELETE FROM metrics WHERE run = ? AND step > ?", path_);
  s.bind(1, run).bind(2, after_step).step();
}

void RunStore::transaction(const std::function<void()>& body) {
  exec("BEGIN IMMEDIATE");  // takes the write lock now, through the busy handler
  try {
    body();
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);  // the error being thrown stays
    throw;
  }
}

void RunStore::addMetrics(int64_t run, int64_t step,
                          const std::vector<std::pair<std::string, double>>& kv) {
  transaction([&] {
    Stmt s(db_, "INSERT INTO metrics (run, step, wall, key, value) VALUES (?, ?, ?, ?, ?)", path_);
    const double wall = now();
    for (const auto& [k, v] : kv) {
      s.bind(1, run).bind(2, step).bind(3, wall).bind(4, k).bind(5, v).step();
      s.reset();
    }
  });
}

void RunStore::addArtifact(int64_t run, const std::string& kind, const std::string& path,
                           int64_t step) {
  Stmt s(db_, "INSERT INTO artifacts (run, kind, path, step, created) VALUES (?, ?, ?, ?, ?)",
         path_);
  s.bind(1, run).bind(2, kind).bind(3, path).bind(4, step).bind(5, now()).step();
}

void RunStore::removeArtifact(int64_t run, const std::string& path) {
  Stmt s(db_, "DELETE FROM artifacts WHERE run = ? AND path = ?", path_);
  s.bind(1, run).bind(2, path).step();
}

std::vector<RunRow> RunStore::runs() const {
  Stmt s(db_, std::string("SELECT ") + kRunColumns + " FROM runs ORDER BY id", path_);
  std::vector<RunRow> out;
  while (s.step()) out.push_back(readRun(s));
  return out;
}

std::optional<RunRow> RunStore::findRun(const std::string& key) const {
  Stmt s(db_,
         std::string("SELECT ") + kRunColumns +
             " FROM runs WHERE name = ? OR CAST(id AS TEXT) = ? ORDER BY name = ? DESC LIMIT 1",
         path_);
  s.bind(1, key).bind(2, key).bind(3, key);
  if (s.step()) return readRun(s);
  return std::nullopt;
}

RunRow RunStore::run(const std::string& key) const {
  auto r = findRun(key);
  if (!r) throw Error(path_ + ": no run named '" + key + "'");
  return *r;
}

std::vector<MetricRow> RunStore::metrics(int64_t run, const std::string& key) const {
  Stmt s(
      db_,
      key.empty()
          ? "SELECT step, wall, key, value FROM metrics WHERE run = ? ORDER BY rowid"
          : "SELECT step, wall, key, value FROM metrics WHERE run = ? AND key = ? ORDER BY rowid",
      path_);
  s.bind(1, run);
  if (!key.empty()) s.bind(2, key);
  std::vector<MetricRow> out;
  while (s.step()) out.push_back({s.i(0), s.d(1), s.t(2), s.d(3)});
  return out;
}

std::vector<ArtifactRow> RunStore::artifacts(int64_t run) const {
  Stmt s(db_, "SELECT kind, path, step, created FROM artifacts WHERE run = ? ORDER BY rowid",
         path_);
  s.bind(1, run);
  std::vector<ArtifactRow> out;
  while (s.step()) out.push_back({s.t(0), s.t(1), s.i(2), s.d(3)});
  return out;
}

}  // namespace msconv::store
