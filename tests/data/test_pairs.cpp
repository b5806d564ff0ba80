#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>

#include "msconv/data/decode.h"
#include "msconv/data/pairs.h"
#include "msconv/error.h"
#include "test_util.h"

using namespace msconv;
using namespace msconv::data;

namespace {
std::string errorOf(const std::string& path) {
  try {
    readPairsBin(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST(PairsBin, EveryPickleVariantReadsTheSame) {
  std::ifstream f(test::dataFixtureDir() + "/manifest.json");
  const auto m = nlohmann::json::parse(f);
  std::vector<std::string> expect;
  for (int i = 0; i < 12; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/img_%02d.pnm", i);
    expect.push_back(readFile(test::dataFixtureDir() + name));
  }
  for (const auto& file : m["pairs"]) {
    SCOPED_TRACE(file.get<std::string>());
    const auto set = readPairsBin(test::dataFixtureDir() + "/" + file.get<std::string>());
    ASSERT_EQ(set.pairs(), m["issame"].size());
    EXPECT_EQ(set.images, expect);
    for (size_t i = 0; i < set.pairs(); ++i)
      EXPECT_EQ(bool(set.issame[i]), m["issame"][i].get<bool>());
  }
}

TEST(PairsBin, WriterRoundTrips) {
  PairSet set;
  std::mt19937 rng(3);
  for (int i = 0; i < 2400; ++i) {  // more than one APPENDS batch
    std::string img(1 + rng() % 600, '\0');
    for (auto& c : img) c = static_cast<char>(rng());
    set.images.push_back(img);
  }
  for (int i = 0; i < 1200; ++i) set.issame.push_back(rng() % 2);
  const std::string path = ::testing::TempDir() + "/w.bin";
  writePairsBin(path, set);
  const auto back = readPairsBin(path);
  EXPECT_EQ(back.images, set.images);
  EXPECT_EQ(back.issame, set.issame);
}

TEST(PairsBin, ForeignGlobalsAndBadShapesAreNamed) {
  const std::string d = test::dataFixtureDir();
  EXPECT_NE(errorOf(d + "/pairs_foreign.bin").find("global 'os.system', which is not allowed"),
            std::string::npos);
  EXPECT_NE(errorOf(d + "/pairs_mismatch.bin").find("5 images for 6 pairs"), std::string::npos);
  EXPECT_NE(errorOf(d + "/nothing.bin").find("no such verification file"), std::string::npos);
  // Truncations of a valid file: an error naming the file, never a crash.
  const std::string good = readFile(d + "/pairs_p4.bin");
  std::mt19937 rng(9);
  for (int t = 0; t < 200; ++t) {
    std::string b = good;
    if (t % 2)
      b.resize(rng() % b.size());
    else
      for (int k = 0; k < 4; ++k) b[rng() % b.size()] ^= static_cast<char>(1 + rng() % 255);
    const std::string p = ::testing::TempDir() + "/fz.bin";
    std::ofstream(p, std::ios::binary) << b;
    try {
      readPairsBin(p);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("fz.bin"), std::string::npos);
    }
  }
}
