// The authors' MSNet-50 and insightface's iResNet-18, built and randomly initialised in PyTorch,
// imported from their torch.save'd state_dicts: the embeddings must match PyTorch's.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "msconv/io/state_dict.h"
#include "msconv/nn/backbone.h"
#include "test_util.h"

using namespace msconv;

namespace {
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
  std::cout << name << ": max |embedding diff| = " << diff
            << " (max |embedding| = " << ref["emb"].abs().max().item<double>() << ")\n";
  EXPECT_LT(diff, 1e-4);
}
}  // namespace

TEST(Import, AuthorsMSNet50EmbeddingsMatchPyTorch) {
  expectSameEmbeddings("msnet50", "msnet50", "msconv-official");
}

TEST(Import, InsightfaceIResNet18EmbeddingsMatchPyTorch) {
  expectSameEmbeddings("iresnet18", "iresnet18", "conv");
}
