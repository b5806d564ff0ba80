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

// Long work stopped at the user's request (an evaluation's or a synthetic set's progress callback
// said stop): the message names what was stopped.
class Cancelled : public Error {
 public:
  using Error::Error;
};

}  // namespace msconv
