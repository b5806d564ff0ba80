// Helpers shared by the C++ tests: the reference fixture folder and tolerance checks.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <string>

#include "msconv/error.h"
#include "msconv/io/state_dict.h"

namespace msconv::test {

// Folder written by tests/python/make_fixtures.py (ctest's fixture step sets MSCONV_FIXTURES).
inline std::string fixtureDir() {
  const char* d = std::getenv("MSCONV_FIXTURES");
  return d ? d : MSCONV_FIXTURES_DIR;
}

// Folder written by tests/python/make_data_fixtures.py.
inline std::string dataFixtureDir() {
  const char* d = std::getenv("MSCONV_DATA_FIXTURES");
  return d ? d : MSCONV_DATA_FIXTURES_DIR;
}

inline std::map<std::string, torch::Tensor> readFixture(const std::string& file) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [k, v] : io::readTorchFile(fixtureDir() + "/" + file)) out[k] = v;
  return out;
}

// The message of the msconv::Error that f throws, or "no error".
inline std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// |a - b| <= atol + rtol * max|b|, elementwise maximum reported on failure.
inline ::testing::AssertionResult closeTo(const torch::Tensor& a, const torch::Tensor& b,
                                          double rtol = 1e-4, double atol = 1e-5) {
  if (!a.defined() || !b.defined()) return ::testing::AssertionFailure() << "undefined tensor";
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "shapes differ: " << a.sizes() << " vs " << b.sizes();
  const double scale = b.abs().max().item<double>();
  const double diff = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
  if (diff <= atol + rtol * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max |diff| " << diff << " > " << atol << " + " << rtol << " * " << scale;
}

}  // namespace msconv::test
