#include "msconv/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "msconv/error.h"

namespace msconv {
namespace {

std::atomic<int64_t> g_ops{0}, g_fail_at{0};
std::atomic<int> g_fail_errno{0};

// Tests: MSCONV_KILL_AT_FILE_OPERATION=N kills the process (SIGKILL) at its N-th counted file
// operation, inside a checkpoint write or a store transaction, for the CLI's kill tests.
const int64_t g_kill_at = [] {
  const char* v = std::getenv("MSCONV_KILL_AT_FILE_OPERATION");
  return v ? std::atoll(v) : 0;
}();

// Counts an operation (`op` on `file`); true (with errno set) when the injected fault hits it.
bool injected(const char* op, const char* file) {
  const int64_t n = ++g_ops;
  if (g_kill_at > 0 && n == g_kill_at) {
    char line[512];
    const int k =
        std::snprintf(line, sizeof line, "msconv: killed at file operation %lld (%s %s)\n",
                      static_cast<long long>(n), op, file);
    if (k > 0 && ::write(2, line, std::min<size_t>(k, sizeof line - 1)) < 0) {
      // nothing to do about a stderr that cannot be written: the kill is what matters
    }
    ::raise(SIGKILL);
  }
  if (g_fail_at > 0 && n == g_fail_at) {
    errno = g_fail_errno;
    return true;
  }
  return false;
}

ssize_t writeSome(int fd, const void* p, size_t n, const std::string& file) {
  if (injected("write", file.c_str())) return -1;
  return ::write(fd, p, n);
}

int writeAll(int fd, const void* data, size_t size, const std::string& file) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t k = writeSome(fd, p, size, file);
    if (k < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += k;
    size -= static_cast<size_t>(k);
  }
  return 0;
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp-" + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path_ + ": cannot write: " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::fail(const char* what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  throw Error(path_ + ": cannot " + what + ": " + std::strerror(err));
}

int AtomicFile::append(const void* data, size_t size) noexcept {
  constexpr size_t kBuffer = 1 << 20;  // LibTorch's zip writer hands over many small pieces
  if (buffer_.size() + size > kBuffer) {
    if (const int err = flush()) return err;
    if (size >= kBuffer) return writeAll(fd_, data, size, tmp_);
  }
  const char* p = static_cast<const char*>(data);
  buffer_.insert(buffer_.end(), p, p + size);
  return 0;
}

int AtomicFile::flush() noexcept {
  const int err = buffer_.empty() ? 0 : writeAll(fd_, buffer_.data(), buffer_.size(), tmp_);
  buffer_.clear();
  return err;
}

void AtomicFile::write(const void* data, size_t size) {
  if (error_) fail("write", error_);
  if (const int err = append(data, size)) fail("write", err);
}

void AtomicFile::writeNoThrow(const void* data, size_t size) noexcept {
  if (error_ || fd_ < 0) return;
  try {
    error_ = append(data, size);
  } catch (const std::bad_alloc&) {
    error_ = ENOMEM;
  }
}

void AtomicFile::commit() {
  if (error_) fail("write", error_);
  if (const int err = flush()) fail("write", err);
  if (injected("fsync", tmp_.c_str()) || ::fsync(fd_) != 0) fail("write", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("write", errno);
  if (injected("rename", tmp_.c_str()) || ::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail("replace", errno);
  committed_ = true;
  // The rename is durable once the folder is flushed (a failure here loses nothing written).
  const std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void writeFileAtomically(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

int removeStaleTemporaries(const std::string& dir) noexcept {
  int removed = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto at = name.rfind(".tmp-");
    if (at == std::string::npos || at + 5 >= name.size()) continue;
    const std::string digits = name.substr(at + 5);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno == EPERM) continue;  // still alive
    std::error_code rm;
    if (std::filesystem::remove(it->path(), rm)) ++removed;
  }
  return removed;
}

bool injectedFileFault(const char* op, const char* file, int& err) noexcept {
  if (!injected(op, file)) return false;
  err = errno;
  return true;
}

int64_t failNthFileOperation(int64_t n, int err) {
  const int64_t ran = g_ops.exchange(0);
  g_fail_errno = err;
  g_fail_at = n;
  return ran;
}

}  // namespace msconv
