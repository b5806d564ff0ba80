// The C++ tests' main: each process (ctest runs one per test, several at a time) gets its own
// scratch folder as ::testing::TempDir(), so tests that write fixed names there never meet.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

int main(int argc, char** argv) {
  const char* base = std::getenv("TMPDIR");
  // mkdtemp's template: it replaces the six trailing X with a unique suffix.
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/msconv-test-XXXXXX";
  if (!mkdtemp(pattern.data())) {
    std::perror(pattern.c_str());
    return 2;
  }
  setenv("TEST_TMPDIR", (pattern + "/").c_str(), 1);
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  std::error_code ec;
  if (rc == 0)
    std::filesystem::remove_all(pattern, ec);
  else
    std::fprintf(stderr, "test scratch folder kept: %s\n", pattern.c_str());
  return rc;
}
