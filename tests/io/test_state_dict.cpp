#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "msconv/error.h"
#include "msconv/io/state_dict.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/operators.h"
#include "test_util.h"

using namespace msconv;

namespace {
using test::errorOf;
}  // namespace

TEST(StateDict, ReadsPyTorchZipArchives) {
  const auto t = io::readTorchFile(test::fixtureDir() + "/msconv_official_state.pt");
  std::map<std::string, torch::Tensor> m(t.begin(), t.end());
  ASSERT_TRUE(m.count("convs.0.0.weight"));
  EXPECT_EQ(m["convs.0.0.weight"].sizes(), (std::vector<int64_t>{64, 2, 3, 3}));
  EXPECT_EQ(m["convs.0.1.num_batches_tracked"].scalar_type(), torch::kInt64);
  EXPECT_EQ(m["fc_d.2.weight"].sizes(), (std::vector<int64_t>{1}));  // nn.PReLU(): one slope
  // Order is the state_dict's own.
  EXPECT_EQ(t.front().first, "convs.0.0.weight");
}

TEST(StateDict, MissingUnexpectedAndMisshapedKeysAreNamed) {
  const auto state = io::readTorchFile(test::fixtureDir() + "/msconv_official_state.pt");
  nn::OpContext ctx;
  ctx.channels = 64;
  // Same operator, other kernel pair: shapes agree, so this one loads.
  auto same = nn::makeOperator(nn::parseOpSpec("msconv-official:kernels=k5k7"), ctx);
  EXPECT_TRUE(io::loadStateDict(*same, state, false, "f.pt").complete());
  // SKConv has no fc_d and other heads.
  auto sk = nn::makeOperator(nn::parseOpSpec("skconv"), ctx);
  const std::string msg = errorOf([&] { io::loadStateDict(*sk, state, false, "f.pt"); });
  EXPECT_NE(msg.find("f.pt: state_dict does not fit the model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("fc_d"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--allow-partial"), std::string::npos) << msg;
  // Other channel count: mis-shaped, named with both shapes.
  nn::OpContext c128 = ctx;
  c128.channels = 128;
  auto wide = nn::makeOperator(nn::parseOpSpec("msconv-official"), c128);
  const std::string m2 = errorOf([&] { io::loadStateDict(*wide, state, false, "f.pt"); });
  EXPECT_NE(m2.find("mis-shaped: convs.0.0.weight: file [64, 2, 3, 3] vs model [128, 4, 3, 3]"),
            std::string::npos)
      << m2;
  // A partial load copies what fits (the branch convolutions share names and shapes) and leaves
  // the rest (SKConv's heads have other names) as they were.
  std::map<std::string, torch::Tensor> file(state.begin(), state.end());
  const auto head_before = sk->named_parameters()["fcs.0.weight"].clone();
  const auto report = io::loadStateDict(*sk, state, true, "f.pt");
  EXPECT_FALSE(report.complete());
  EXPECT_GT(report.loaded, 0);
  EXPECT_TRUE(sk->named_parameters()["convs.0.0.weight"].equal(file["convs.0.0.weight"]));
  EXPECT_TRUE(sk->named_parameters()["fcs.0.weight"].equal(head_before));
}

TEST(StateDict, ForeignAndCorruptFilesAreClearErrors) {
  const std::string dir = ::testing::TempDir();
  const std::string junk = dir + "/junk.pt";
  std::ofstream(junk) << "this is not a zip file";
  EXPECT_NE(errorOf([&] { io::readTorchFile(junk); }).find(junk + ": not a PyTorch zip archive"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { io::readTorchFile(dir + "/nope.pt"); }).find("nope.pt"),
            std::string::npos);

  // Truncations and flipped bytes of a real archive: errors, never crashes.
  std::ifstream in(test::fixtureDir() + "/skconv_k3k3_s2_state.pt", std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), {});
  std::mt19937 rng(7);
  int failures = 0;
  for (int trial = 0; trial < 60; ++trial) {
    std::string bad = good;
    if (trial % 2)
      bad.resize(rng() % bad.size());
    else
      for (int k = 0; k < 8; ++k) bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
    const std::string path = dir + "/bad.pt";
    std::ofstream(path, std::ios::binary) << bad;
    try {
      io::readTorchFile(path);
    } catch (const Error& e) {
      ++failures;
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(failures, 20);
}
