// Shared by the fuzz targets: a per-process scratch folder for readers that take a path, input
// splitting, a cap on single allocations, and the report of a broken property (a crash that
// libFuzzer records).
#pragma once

#include <sanitizer/allocator_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace msconv::fuzz {

// /tmp/msconv-fuzz-PID (under $TMPDIR when set), created on first use and removed at exit. One
// folder per process, so parallel fuzzers never share files; every input reuses the same names.
inline const std::string& scratchDir() {
  // Never destroyed: the exit handler below still reads it after static destructors ran.
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    const std::filesystem::path base = tmp && *tmp ? tmp : "/tmp";
    auto* d = new std::string((base / ("msconv-fuzz-" + std::to_string(::getpid()))).string());
    std::filesystem::create_directories(*d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratchDir(), ec);
    });
    return d;
  }();
  return *dir;
}

// scratchDir()/name.
inline std::string scratchPath(const std::string& name) {
  return scratchDir() + "/" + name;
}

// Replaces `path` with the bytes (a failure to write is the harness's fault: abort).
inline void writeFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz harness: cannot write %s\n", path.c_str());
    std::abort();
  }
}

inline std::string_view bytesOf(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The RecordIO layout of the recordio targets: the first two bytes (little-endian) give the length
// of the .idx text that follows them, the rest is the .rec. Writes train.idx and train.rec in the
// scratch folder and returns the .rec's path; empty for an input under two bytes.
inline std::string writeRecordPair(const uint8_t* data, size_t size) {
  if (size < 2) return {};
  static const std::string rec = scratchPath("train.rec");
  static const std::string idx = scratchPath("train.idx");
  const std::string_view in = bytesOf(data + 2, size - 2);
  const size_t idx_len = std::min<size_t>(data[0] | (size_t{data[1]} << 8), in.size());
  writeFile(idx, in.substr(0, idx_len));
  writeFile(rec, in.substr(idx_len));
  return rec;
}

// The input cut at the first `parts - 1` occurrences of `sep`; missing parts are empty.
inline std::vector<std::string_view> split(std::string_view in, std::string_view sep,
                                           size_t parts) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < parts) {
    const size_t at = in.find(sep);
    if (at == std::string_view::npos) break;
    out.push_back(in.substr(0, at));
    in.remove_prefix(at + sep.size());
  }
  out.push_back(in);
  out.resize(parts);
  return out;
}

// Makes one allocation larger than 64 MiB plus 64 bytes per input byte a finding (abort, so
// libFuzzer saves the input), from the first call on; call it with each input's size. For readers
// whose data grows no faster than their input: a larger block comes from a size field that was
// trusted before it was checked against the file (libFuzzer's own -malloc_limit_mb is 1 GiB).
inline void capAllocations(size_t input_size) {
  static std::atomic<size_t> cap{0};
  cap.store((size_t{64} << 20) + 64 * input_size, std::memory_order_relaxed);
  static const bool installed = [] {
    return __sanitizer_install_malloc_and_free_hooks(
               [](const volatile void*, size_t size) {
                 static thread_local bool reporting = false;
                 if (size <= cap.load(std::memory_order_relaxed) || reporting) return;
                 reporting = true;
                 std::fprintf(stderr, "fuzz allocation cap: malloc(%zu) above %zu bytes\n", size,
                              cap.load(std::memory_order_relaxed));
                 __sanitizer_print_stack_trace();
                 std::abort();
               },
               [](const volatile void*) {}) != 0;
  }();
  (void)installed;
}

// A property the reader promises does not hold: report and abort (libFuzzer saves the input).
[[noreturn]] inline void violated(const std::string& what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what.c_str());
  std::abort();
}

}  // namespace msconv::fuzz
