// Errors a user can cause (bad names, options, files): one clear line, never a crash.
#pragma once

#include <stdexcept>
#include <string>

namespace msconv {

// A user-facing error. what() is a single line that names the file, key or option at fault.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace msconv
