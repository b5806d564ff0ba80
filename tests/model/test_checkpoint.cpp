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
  // A corrupt TorchScript debug record beside code that does not parse (the fuzzer's find):
  // LibTorch 1.13's loader crashed reading it for its error message; the checkpoint's debug records
  // are hidden from it, so the code's parse error is reported with the file.
  std::ifstream crash(
      std::string(MSCONV_GOLDEN_DIR) + "/../fuzz/regressions/checkpoint/corrupt-debug-record.in",
      std::ios::binary);
  ASSERT_TRUE(crash);
  std::string bytes((std::istreambuf_iterator<char>(crash)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 1u);
  const std::string corrupt = dir + "/corrupt-debug-record.ckpt";
  std::ofstream(corrupt, std::ios::binary) << bytes.substr(1);  // the harness's mode byte off
  EXPECT_NE(message(corrupt).find(corrupt + ": not an MSConv Lab checkpoint"), std::string::npos)
      << message(corrupt);
  // A good checkpoint, its debug records hidden from the loader, reads as before.
  const std::string again = dir + "/again.ckpt";
  auto model = nn::makeBackbone("msnet-tiny", "conv3x3");
  model->eval();
  model::saveModel(again, *model);
  auto loaded = model::loadModel(again).model;
  loaded->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 112, 112});
  EXPECT_TRUE(loaded->forward(x).equal(model->forward(x)));
}

TEST(Checkpoint, RecordsTheSlopeShapeAndReadsVersionOneFilesAsPerChannel) {
  torch::manual_seed(12);
  // A file as MSConv Lab wrote it before version 2: preset name, no "prelu" entry, and one PReLU
  // slope per channel in the MSNet frame (as every frame had then).
  auto old = nn::makeBackbone("msnet-tiny:prelu=channel", "msconv-official");
  {
    torch::NoGradGuard g;
    for (auto& p : old->parameters()) p.uniform_(-0.3, 0.3);
  }
  old->eval();
  const std::string path = ::testing::TempDir() + "/v1.ckpt";
  {
    torch::serialize::OutputArchive a, weights;
    a.write("format", c10::IValue(std::string(model::kCheckpointFormat)));
    a.write("version", c10::IValue(static_cast<int64_t>(1)));
    a.write("arch", c10::IValue(std::string("msnet-tiny")));
    a.write("op", c10::IValue(std::string("msconv-official")));
    old->save(weights);
    a.write("model", weights);
    a.save_to(path);
  }
  auto loaded = model::loadModel(path);
  EXPECT_EQ(loaded.model->arch().prelu, nn::PReluSlopes::kPerChannel);
  EXPECT_EQ(loaded.arch, "msnet-tiny:prelu=channel");
  const auto x = torch::randn({2, 3, 112, 112});
  torch::NoGradGuard g;
  EXPECT_TRUE(loaded.model->forward(x).equal(old->forward(x)));

  // Written again, the file says what it holds and reads back the same.
  const std::string again = ::testing::TempDir() + "/v2.ckpt";
  model::saveModel(again, *loaded.model);
  torch::serialize::InputArchive a;
  model::openCheckpoint(again, a);
  c10::IValue prelu, version;
  ASSERT_TRUE(a.try_read("prelu", prelu));
  EXPECT_EQ(prelu.toStringRef(), "channel");
  ASSERT_TRUE(a.try_read("version", version));
  EXPECT_EQ(version.toInt(), model::kCheckpointVersion);
  EXPECT_TRUE(model::loadModel(again).model->forward(x).equal(old->forward(x)));
  // A new MSNet has one shared slope per PReLU.
  auto fresh = nn::makeBackbone("msnet-tiny", "msconv-official");
  for (const auto& p : fresh->named_parameters())
    if (p.key().find("prelu") != std::string::npos ||
        p.key().find(".2.weight") != std::string::npos) {
      EXPECT_EQ(p.value().numel(), 1) << p.key();
    }
}
