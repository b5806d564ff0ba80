// The authors' MSNet-26 / MSNet-50 (built in PyTorch by tests/python/authors_msnet.py exactly as
// their model.py writes it) and insightface's iResNet-18, imported from their torch.save'd
// state_dicts: the embeddings must match PyTorch's. arcface_torch training checkpoints, one rank
// and two, import with their head assembled. cheng-haha/ScConv's own module's weights drive our
// SCConv to its outputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "msconv/io/state_dict.h"
#include "msconv/model/checkpoint.h"
#include "msconv/model/import.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/operators.h"
#include "test_util.h"

using namespace msconv;

namespace {

double relativeL2(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

void expectSameEmbeddings(const std::string& name, const std::string& arch, const std::string& op) {
  auto model = nn::makeBackbone(arch, op);
  const auto state = io::readTorchFile(test::fixtureDir() + "/" + name + "_state.pt");
  const auto report = io::loadStateDict(*model, state, false, name);
  EXPECT_TRUE(report.complete()) << report.summary();
  model->eval();
  auto ref = test::readFixture(name + "_io.pt");
  torch::NoGradGuard g;
  const auto emb = model->forward(ref["x"]);
  const double diff = (emb - ref["emb"]).abs().max().item<double>();
  const double rel = relativeL2(emb, ref["emb"]);
  std::cout << name << ": max |embedding diff| = " << diff << ", relative L2 = " << rel
            << " (max |embedding| = " << ref["emb"].abs().max().item<double>() << ")\n";
  EXPECT_LT(diff, 1e-4);
  EXPECT_LT(rel, 1e-4);
}

std::string fx(const std::string& file) {
  return test::fixtureDir() + "/" + file;
}

}  // namespace

TEST(Import, AuthorsMSNet50EmbeddingsMatchPyTorch) {
  expectSameEmbeddings("msnet50", "msnet50", "msconv-official");
}

TEST(Import, AuthorsMSNet26EmbeddingsMatchPyTorch) {
  expectSameEmbeddings("msnet26", "msnet26", "msconv-official");
}

TEST(Import, InsightfaceIResNet18EmbeddingsMatchPyTorch) {
  expectSameEmbeddings("iresnet18", "iresnet18", "conv");
}

TEST(Import, FasterNetT0AsItsAuthorsWriteItEmbedsAsPyTorch) {
  expectSameEmbeddings("fasternet_t0", "fasternet-t0", "pconv");
}

TEST(Import, FasterNetSAsItsAuthorsWriteItEmbedsAsPyTorch) {
  expectSameEmbeddings("fasternet_s", "fasternet-s", "pconv");
}

TEST(Import, FasterNetParameterCountsEqualItsAuthorsCode) {
  std::ifstream f(fx("manifest.json"));
  ASSERT_TRUE(f);
  const auto counts = nlohmann::json::parse(f)["peer_params"];
  ASSERT_EQ(counts.size(), 2u);
  for (const auto& [arch, n] : counts.items()) {
    SCOPED_TRACE(arch);
    int64_t params = 0;
    for (const auto& p : nn::makeBackbone(arch)->parameters()) params += p.numel();
    EXPECT_EQ(params, n.get<int64_t>());
  }
}

TEST(Import, ParameterCountsEqualTheAuthorsCode) {
  std::ifstream f(fx("manifest.json"));
  ASSERT_TRUE(f);
  const auto counts = nlohmann::json::parse(f)["authors_params"];
  ASSERT_EQ(counts.size(), 3u);
  for (const auto& [arch, n] : counts.items()) {
    SCOPED_TRACE(arch);
    int64_t params = 0;
    for (const auto& p : nn::makeBackbone(arch, "msconv-official")->parameters())
      params += p.numel();
    EXPECT_EQ(params, n.get<int64_t>());
  }
}

TEST(Import, ArcfaceTorchCheckpointOfOneRank) {
  auto ref = test::readFixture("arcface_io.pt");
  const auto arch = nn::parseArch("msnet-tiny");
  const auto r = model::importTorchFiles({fx("arcface1/checkpoint_gpu_0.pt")}, arch,
                                         nn::defaultOpFor(arch), false);
  EXPECT_TRUE(r.report.complete()) << r.report.summary();
  ASSERT_TRUE(r.head.defined());
  EXPECT_TRUE(r.head.equal(ref["head"]));
  EXPECT_EQ(r.epoch, 1);
  EXPECT_EQ(r.global_step, 120);
  EXPECT_NE(r.summary().find("epoch 1, global step 120"), std::string::npos) << r.summary();
  EXPECT_NE(r.summary().find("head 11 classes x 512 from 1 file"), std::string::npos);
  torch::NoGradGuard g;
  EXPECT_LT(relativeL2(r.model->forward(ref["x"]), ref["emb"]), 1e-4);
  // arcface_torch's model.pt (the backbone alone) imports to the same model, without a head.
  const auto plain =
      model::importTorchFiles({fx("arcface1/model.pt")}, arch, nn::defaultOpFor(arch), false);
  EXPECT_FALSE(plain.head.defined());
  EXPECT_LT(relativeL2(plain.model->forward(ref["x"]), ref["emb"]), 1e-4);
}

TEST(Import, ArcfaceTorchCheckpointsOfTwoRanksAssembleTheHead) {
  auto ref = test::readFixture("arcface_io.pt");
  const auto arch = nn::parseArch("msnet-tiny");
  // Given in either order: the file names carry the ranks.
  for (const auto& files : std::vector<std::vector<std::string>>{
           {fx("arcface2/checkpoint_gpu_0.pt"), fx("arcface2/checkpoint_gpu_1.pt")},
           {fx("arcface2/checkpoint_gpu_1.pt"), fx("arcface2/checkpoint_gpu_0.pt")}}) {
    const auto r = model::importTorchFiles(files, arch, nn::defaultOpFor(arch), false);
    EXPECT_TRUE(r.report.complete()) << r.report.summary();  // "module." prefixes stripped
    ASSERT_TRUE(r.head.defined());
    EXPECT_TRUE(r.head.equal(ref["head"]));  // 6 + 5 Partial FC shards, in rank order
    EXPECT_EQ(r.ranks, 2);
    EXPECT_EQ(r.epoch, 3);
    torch::NoGradGuard g;
    EXPECT_LT(relativeL2(r.model->forward(ref["x"]), ref["emb"]), 1e-4);

    // The checkpoint written keeps the head where identity targets read it.
    const std::string out = ::testing::TempDir() + "/assembled.ckpt";
    model::saveModel(out, *r.model, r.head);
    torch::serialize::InputArchive a, h;
    model::openCheckpoint(out, a);
    ASSERT_TRUE(a.try_read("head", h));
    torch::Tensor w;
    h.read("weight", w);
    EXPECT_TRUE(w.equal(ref["head"]));
    EXPECT_EQ(model::loadModel(out).arch, "msnet-tiny");
  }
}

TEST(Import, BadCheckpointSetsAreClearErrors) {
  const auto arch = nn::parseArch("msnet-tiny");
  const auto op = nn::defaultOpFor(arch);
  auto err = [&](const std::vector<std::string>& files) {
    return test::errorOf([&] { model::importTorchFiles(files, arch, op, false); });
  };
  // A rank missing: ranks 0 and 2 of a run.
  const std::string gpu2 = ::testing::TempDir() + "/checkpoint_gpu_2.pt";
  std::filesystem::copy_file(fx("arcface2/checkpoint_gpu_1.pt"), gpu2,
                             std::filesystem::copy_options::overwrite_existing);
  const std::string gap = err({fx("arcface2/checkpoint_gpu_0.pt"), gpu2});
  EXPECT_NE(gap.find("checkpoint_gpu_2.pt: rank 2 of 2 files"), std::string::npos) << gap;
  // A checkpoint beside a plain state_dict.
  const std::string plain = err({fx("arcface2/checkpoint_gpu_1.pt"), fx("arcface1/model.pt")});
  EXPECT_NE(plain.find("model.pt: a plain state_dict"), std::string::npos) << plain;
  // Two saves of different runs (epoch 1 and epoch 3).
  const std::string mixed =
      err({fx("arcface1/checkpoint_gpu_0.pt"), fx("arcface2/checkpoint_gpu_1.pt")});
  EXPECT_NE(mixed.find("epoch / global_step differ"), std::string::npos) << mixed;
  // The weights of another architecture: named keys, nothing loaded.
  const std::string other = test::errorOf([&] {
    const auto a = nn::parseArch("msnet-small");
    model::importTorchFiles({fx("arcface1/checkpoint_gpu_0.pt")}, a, nn::defaultOpFor(a), false);
  });
  EXPECT_NE(other.find("checkpoint_gpu_0.pt: state_dict does not fit"), std::string::npos) << other;
}

TEST(Import, ScConvOriginalModuleWeightsGiveItsOutputs) {
  // cheng-haha/ScConv's state_dict names its parts SRU.gn.*, CRU.squeeze1.*, ...; ours are the
  // same tensors without the SRU. / CRU. prefixes, then the frame's BN and PReLU.
  io::NamedTensors state;
  for (auto& [name, t] : io::readTorchFile(fx("scconv_original_state.pt")))
    state.emplace_back(name.substr(name.find('.') + 1), t);
  nn::OpContext ctx;
  ctx.channels = 64;
  auto op = nn::makeOperator(nn::parseOpSpec("scconv"), ctx);
  const auto report = io::loadStateDict(*op, state, /*allow_partial=*/true, "scconv_original");
  EXPECT_TRUE(report.unexpected.empty() && report.mismatched.empty()) << report.summary();
  for (const auto& m : report.missing)
    EXPECT_TRUE(m.rfind("bn.", 0) == 0 || m == "act.weight") << m;
  auto ref = test::readFixture("scconv_original_io.pt");
  op->eval();
  nn::Tap tap;
  torch::NoGradGuard g;
  op->forward(ref["x"], &tap, "op");
  EXPECT_TRUE(test::closeTo(tap.get("op", "sru"), ref["sru"], 1e-5, 1e-6));
  EXPECT_TRUE(test::closeTo(tap.get("op", "cru"), ref["y"], 1e-5, 1e-6));
}
