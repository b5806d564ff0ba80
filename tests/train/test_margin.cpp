#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "msconv/error.h"
#include "msconv/train/gradients.h"
#include "msconv/train/margin.h"

using namespace msconv;
using namespace msconv::train;

TEST(Margin, HandComputedArcFaceCosFaceAndCombined) {
  const auto cos = torch::tensor({{0.5, 0.1}, {-0.2, 0.8}}, torch::kFloat64);
  const auto labels = torch::tensor({0, 1}, torch::kLong);
  const auto arc = marginLogits(cos, labels, marginPreset("arcface"));
  EXPECT_NEAR(arc[0][0].item<double>(), 64 * std::cos(std::acos(0.5) + 0.5), 1e-6);
  EXPECT_NEAR(arc[0][1].item<double>(), 64 * 0.1, 1e-9);  // non-targets only scaled
  EXPECT_NEAR(arc[1][1].item<double>(), 64 * std::cos(std::acos(0.8) + 0.5), 1e-6);
  const auto cf = marginLogits(cos, labels, marginPreset("cosface"));
  EXPECT_NEAR(cf[0][0].item<double>(), 64 * (0.5 - 0.4), 1e-9);
  const auto cml = marginLogits(cos, labels, marginPreset("cml"));
  EXPECT_NEAR(cml[1][1].item<double>(), 64 * (std::cos(std::acos(0.8) + 0.3) - 0.2), 1e-6);
  MarginSpec general{"combined", 0.9, 0.4, 0.15, 32.0, false};
  const auto g = marginLogits(cos, labels, general);
  EXPECT_NEAR(g[0][0].item<double>(), 32 * (std::cos(0.9 * std::acos(0.5) + 0.4) - 0.15), 1e-6);
  EXPECT_NEAR(marginLogits(cos, labels, marginPreset("softmax"))[0][0].item<double>(), 32.0, 1e-9);
}

TEST(Margin, SafeBeyondPiMinusMargin) {
  // theta + m > pi: the target logit keeps decreasing with theta instead of rising again.
  const auto spec = marginPreset("arcface");
  const auto cos = torch::linspace(-1.0, 1.0, 2001, torch::kFloat64).view({-1, 1});
  const auto labels = torch::zeros({2001}, torch::kLong);
  const auto logit =
      marginLogits(torch::cat({cos, torch::zeros_like(cos)}, 1), labels, spec).select(1, 0);
  EXPECT_TRUE(torch::isfinite(logit).all().item<bool>());
  EXPECT_TRUE(
      (logit.slice(0, 1) - logit.slice(0, 0, -1) >= -1e-9).all().item<bool>());  // monotone in cos
  // Continuous at theta_max = pi - 0.5.
  const double c = std::cos(M_PI - 0.5);
  const auto near = torch::tensor({{c - 1e-6, 0.0}, {c + 1e-6, 0.0}}, torch::kFloat64);
  const auto v = marginLogits(near, torch::zeros({2}, torch::kLong), spec).select(1, 0);
  EXPECT_NEAR(v[0].item<double>(), v[1].item<double>(), 1e-3);
}

TEST(Margin, GradientsMatchFiniteDifferences) {
  torch::manual_seed(0);
  MarginSpec spec{"combined", 0.95, 0.3, 0.1, 16.0, false};
  const auto labels = torch::tensor({2, 0, 1}, torch::kLong);
  auto cos = (torch::rand({3, 4}, torch::kFloat64) * 1.6 - 0.8).requires_grad_(true);
  auto loss = [&](const torch::Tensor& c) {
    return torch::nn::functional::cross_entropy(marginLogits(c, labels, spec), labels);
  };
  const auto g = torch::autograd::grad({loss(cos)}, {cos})[0];
  const double h = 1e-6;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) {
      auto p = cos.detach().clone(), m = cos.detach().clone();
      p[i][j] += h;
      m[i][j] -= h;
      const double fd = (loss(p).item<double>() - loss(m).item<double>()) / (2 * h);
      EXPECT_NEAR(g[i][j].item<double>(), fd, 1e-5) << i << "," << j;
    }
}

TEST(Margin, HeadLearnsAndPartialFcSamplesPositives) {
  torch::manual_seed(1);
  MarginHead full(8, 10, marginPreset("arcface"));
  MarginHead partial(8, 1000, marginPreset("cosface"), 0.1);
  const auto x = torch::randn({6, 8});
  const auto y = torch::tensor({3, 3, 7, 1, 999, 0}, torch::kLong);
  const auto lf = full->forward(x, y.remainder(10));
  const auto lp = partial->forward(x, y);
  EXPECT_TRUE(std::isfinite(lf.item<double>()));
  EXPECT_TRUE(std::isfinite(lp.item<double>()));
  lp.backward();
  // Only sampled centres (100 of 1000) get gradients; every positive is among them.
  const auto rows = partial->weight.grad().abs().sum(1) > 0;
  EXPECT_EQ(rows.sum().item<int64_t>(), 100);
  for (int64_t c : {3, 7, 1, 999, 0}) EXPECT_TRUE(rows[c].item<bool>()) << c;
  EXPECT_THROW(marginPreset("triplet"), Error);
  EXPECT_THROW(MarginHead(8, 10, marginPreset("arcface"), 1.5), Error);
}

// Released gradients (set to none) give the same SGD updates, momentum and weight decay included,
// as gradients zeroed in place, over steps with accumulated micro-batches.
TEST(Gradients, ReleasedGradientsGiveTheSameUpdatesAsZeroed) {
  const auto train = [](bool release) {
    torch::manual_seed(4);
    torch::nn::Sequential net(torch::nn::Linear(6, 5), torch::nn::PReLU(), torch::nn::Linear(5, 3));
    auto unused = torch::randn({4}).requires_grad_();
    std::vector<torch::Tensor> params = net->parameters();
    params.push_back(unused);
    torch::optim::SGD opt(params, torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4));
    const auto x = torch::randn({8, 6});
    const auto y = torch::randint(0, 3, {8}, torch::kLong);
    for (int step = 0; step < 4; ++step) {
      if (release) {
        msconv::train::releaseGradients(opt);
        for (const auto& p : params) EXPECT_FALSE(p.grad().defined());
      } else {
        opt.zero_grad();
      }
      // Two accumulated micro-batches: the second backward adds to the stored gradient.
      for (int k = 0; k < 2; ++k)
        torch::nn::functional::cross_entropy(net->forward(x.narrow(0, 4 * k, 4)),
                                             y.narrow(0, 4 * k, 4))
            .backward();
      opt.step();
    }
    params.pop_back();
    std::vector<torch::Tensor> out;
    for (const auto& p : params) out.push_back(p.detach().clone());
    out.push_back(unused.detach().clone());
    return out;
  };
  const auto zeroed = train(false), released = train(true);
  ASSERT_EQ(zeroed.size(), released.size());
  // Every parameter, the one outside the loss too (it never gets a gradient either way).
  for (size_t i = 0; i < zeroed.size(); ++i) EXPECT_TRUE(torch::equal(zeroed[i], released[i])) << i;
  EXPECT_FALSE(torch::equal(zeroed[0], torch::zeros_like(zeroed[0])));
}
