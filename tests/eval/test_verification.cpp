#include <gtest/gtest.h>
#include <torch/torch.h>

#include "msconv/eval/verification.h"

using namespace msconv::eval;

TEST(Verification, TarAtFarFromHandPickedScores) {
  // 10 impostors: FAR 1e-1 lets one through (threshold = 2nd highest impostor, 0.8).
  const std::vector<double> impostor = {0.9, 0.8, 0.1, 0.2, 0.3, 0.0, -0.1, 0.05, 0.4, 0.5};
  const std::vector<double> genuine = {0.95, 0.85, 0.81, 0.7, 0.2};
  const auto r = tarAtFar(genuine, impostor);
  ASSERT_EQ(r.size(), 1u);  // 1e-2 would need 100 impostors
  EXPECT_DOUBLE_EQ(r[0].first, 0.1);
  EXPECT_DOUBLE_EQ(r[0].second, 3.0 / 5.0);
  std::vector<double> many(1000);
  for (int i = 0; i < 1000; ++i) many[i] = i / 1000.0;  // 0 .. 0.999
  const auto r2 = tarAtFar({0.9995, 0.995, 0.95, 0.5}, many);
  ASSERT_EQ(r2.size(), 3u);              // 1e-1, 1e-2, 1e-3
  EXPECT_DOUBLE_EQ(r2[0].second, 0.75);  // threshold 0.899
  EXPECT_DOUBLE_EQ(r2[1].second, 0.5);   // threshold 0.989
  EXPECT_DOUBLE_EQ(r2[2].second, 0.25);  // threshold 0.998
}

TEST(Verification, TenFoldAccuracyOnSeparableAndRandomPairs) {
  torch::manual_seed(0);
  const int n = 200;
  auto a = torch::nn::functional::normalize(torch::randn({n, 16}),
                                            torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto b = a.clone();
  std::vector<uint8_t> same(n);
  for (int i = 0; i < n; ++i) {
    same[i] = i % 2 == 0;
    if (!same[i]) b[i] = -a[i];  // distance 4 for impostors, 0 for genuine
  }
  const auto r = foldAccuracy(a, b, same);
  EXPECT_DOUBLE_EQ(r.accuracy, 1.0);
  EXPECT_NEAR(r.accuracy_std, 0.0, 1e-12);
  // Random embeddings: near chance.
  const auto c = torch::nn::functional::normalize(
      torch::randn({n, 16}), torch::nn::functional::NormalizeFuncOptions().dim(1));
  const auto rr = foldAccuracy(a, c, same);
  EXPECT_LT(rr.accuracy, 0.7);
  EXPECT_GT(rr.accuracy, 0.3);
}
