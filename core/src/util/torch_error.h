// Internal: LibTorch errors carry a backtrace; user-facing messages keep their first line.
#pragma once

#include <c10/util/Exception.h>

#include <string>

namespace msconv::util {

inline std::string firstLine(const c10::Error& e) {
  const std::string m = e.what_without_backtrace();
  return m.substr(0, m.find('\n'));
}

}  // namespace msconv::util
