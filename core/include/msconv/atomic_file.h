// Files that appear whole or not at all: written to a temporary file beside the target
// (TARGET.tmp-PID), flushed to disk, renamed into place, and the folder flushed. A failed write
// (ENOSPC, EIO, ...) throws msconv::Error naming the target and the cause, and removes the
// temporary file; the previous file under the target name, if any, stays as it was.
//
// Fault injection (tests only): failNthFileOperation(n, err) makes the n-th write, fsync or
// rename from now on (counted over every AtomicFile of the process, and the run store's SQLite
// writes and syncs) fail with errno `err`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace msconv {

class AtomicFile {
 public:
  // Creates the temporary file. Throws msconv::Error naming `path`.
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary file unless committed; never throws
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::string& path() const { return path_; }
  // Appends bytes. Throws msconv::Error naming the path and the cause.
  void write(const void* data, size_t size);
  // The same for writers that must not see an exception (LibTorch's zip writer throws from its
  // destructor): the first failure is kept, later writes are dropped, and commit() reports it.
  void writeNoThrow(const void* data, size_t size) noexcept;
  // fsync, close, rename into place, fsync the folder. Throws msconv::Error naming the path and
  // the cause (a failure kept by writeNoThrow first).
  void commit();

 private:
  [[noreturn]] void fail(const char* what, int err);
  int append(const void* data, size_t size) noexcept;  // through the buffer; errno or 0
  int flush() noexcept;
  std::string path_, tmp_;
  std::vector<char> buffer_;
  int fd_ = -1;
  int error_ = 0;  // the first errno writeNoThrow met
  bool committed_ = false;
};

// Writes `bytes` to `path` through an AtomicFile.
void writeFileAtomically(const std::string& path, const std::string& bytes);

// Removes the temporary files (NAME.tmp-PID) that processes no longer alive left in `dir` (a
// process killed while writing); returns how many. Never throws.
int removeStaleTemporaries(const std::string& dir) noexcept;

// Tests: the n-th (1-based) write, fsync or rename of AtomicFile from now on fails with `err`;
// n = 0 switches injection off. Returns how many such operations ran since the last call.
int64_t failNthFileOperation(int64_t n, int err);
// The same count for the other writers that take part (the run store's SQLite files): counts one
// operation (`op`, "write" or "fsync", on `file`); true, with the injected errno in `err`, when
// the fault hits it.
bool injectedFileFault(const char* op, const char* file, int& err) noexcept;
// Tests of whole processes: MSCONV_KILL_AT_FILE_OPERATION=N in the environment makes the process
// kill itself (SIGKILL) at its N-th counted operation, after saying which one on stderr
// ("msconv: killed at file operation N (write PATH)").

}  // namespace msconv
