#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "msconv/error.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/backbone.h"
#include "test_util.h"

using namespace msconv;
namespace fs = std::filesystem;

TEST(Checkpoint, RoundTripRebuildsTheSameModel) {
  torch::manual_seed(11);
  auto m = nn::makeBackbone("msnet-tiny", "msconv-official:kernels=k5k7");
  {
    // Non-default BN statistics must survive too.
    torch::NoGradGuard g;
    for (auto& b : m->buffers())
      if (b.is_floating_point()) b.uniform_(0.5, 1.5);
  }
  m->eval();
  const std::string path = ::testing::TempDir() + "/ckpt/a.ckpt";
  model::saveModel(path, *m);
  auto loaded = model::loadModel(path);
  EXPECT_EQ(loaded.arch, "msnet-tiny");
  EXPECT_EQ(loaded.op, "msconv-official:kernels=k5k7");
  const auto x = torch::randn({2, 3, 112, 112});
  torch::NoGradGuard g;
  EXPECT_TRUE(loaded.model->forward(x).equal(m->forward(x)));
  // No temporary file is left beside it.
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path()))
    EXPECT_EQ(e.path().filename(), "a.ckpt");
}

TEST(Checkpoint, OverwriteReplacesTheFileWhole) {
  const std::string path = ::testing::TempDir() + "/over.ckpt";
  model::saveModel(path, *nn::makeBackbone("iresnet-tiny", "conv"));
  model::saveModel(path, *nn::makeBackbone("msnet-tiny", "skconv"));
  EXPECT_EQ(model::loadModel(path).op, "skconv");
}

TEST(Checkpoint, ForeignFilesAreClearErrors) {
  const std::string dir = ::testing::TempDir();
  auto message = [](const std::string& p) {
    try {
      model::loadModel(p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(dir + "/missing.ckpt").find("no such checkpoint file"), std::string::npos);
  std::ofstream(dir + "/text.ckpt") << "hello";
  EXPECT_NE(message(dir + "/text.ckpt").find("not an MSConv Lab checkpoint"), std::string::npos);
  // A PyTorch state_dict is a zip too, but not ours: the message points at msconv import.
  const std::string sd = test::fixtureDir() + "/skconv_state.pt";
  EXPECT_NE(message(sd).find("msconv import"), std::string::npos) << message(sd);
  // Truncated checkpoint.
  const std::string good = dir + "/good.ckpt";
  model::saveModel(good, *nn::makeBackbone("msnet-tiny", "conv3x3"));
  fs::resize_file(good, fs::file_size(good) / 2);
  EXPECT_NE(message(good).find(good), std::string::npos);
}
