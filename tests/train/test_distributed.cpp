// The data-parallel shape of the training step, exercised with ranks as threads of this process:
// a class-sharded margin head gives the loss and gradients of an unsharded one; two trainers as
// two ranks agree on every loss and only rank 0 writes; the loss scaler of mixed precision.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <thread>

#include "msconv/error.h"
#include "msconv/nn/batch_norm.h"
#include "msconv/store/run_store.h"
#include "msconv/train/collective.h"
#include "msconv/train/grad_scaler.h"
#include "msconv/train/margin.h"
#include "msconv/train/trainer.h"

using namespace msconv;
using namespace msconv::train;
namespace fs = std::filesystem;

TEST(Collective, ClassShardsCoverEveryClassOnce) {
  int64_t next = 0;
  for (int r = 0; r < 3; ++r) {
    const auto [b, e] = classShard(10, r, 3);
    EXPECT_EQ(b, next);
    EXPECT_GE(e - b, 3);
    next = e;
  }
  EXPECT_EQ(next, 10);
}

TEST(Collective, ThreadGroupReducesAndGathers) {
  auto group = threadGroup(3);
  std::vector<torch::Tensor> sums(3), maxes(3), gathered(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r)
    threads.emplace_back([&, r] {
      std::vector<torch::Tensor> v{torch::full({2}, double(r + 1))};
      group[r]->allReduceSum(v);
      sums[r] = v[0];
      auto m = torch::full({1}, double(10 - r));
      group[r]->allReduceMax(m);
      maxes[r] = m;
      gathered[r] = group[r]->allGather(torch::full({r + 1}, double(r)));
      std::vector<torch::Tensor> b{torch::full({2}, double(r + 7))};
      group[r]->broadcast(b, 1);
      EXPECT_DOUBLE_EQ(b[0][0].item<double>(), 8.0);
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) {
    EXPECT_DOUBLE_EQ(sums[r][1].item<double>(), 6.0);
    EXPECT_DOUBLE_EQ(maxes[r][0].item<double>(), 10.0);
    ASSERT_EQ(gathered[r].size(0), 6);  // rows 0 | 1 1 | 2 2 2
    EXPECT_DOUBLE_EQ(gathered[r][2].item<double>(), 1.0);
    EXPECT_DOUBLE_EQ(gathered[r][5].item<double>(), 2.0);
  }
}

// Two ranks, each with half of the batch and about half of the classes, against one head.
void expectShardedEqualsWhole(const std::string& loss, int world) {
  const int64_t N = 12, D = 16, C = 11;
  torch::manual_seed(7);
  const auto emb = torch::randn({N, D}, torch::kFloat64);
  const auto labels = torch::randint(0, C, {N}, torch::kLong);
  torch::manual_seed(1);
  MarginHead whole(D, C, marginPreset(loss));
  whole->to(torch::kFloat64);
  auto e_whole = emb.clone().requires_grad_(true);
  const auto l_whole = whole->forward(e_whole, labels);
  l_whole.backward();

  auto group = threadGroup(world);
  std::vector<double> losses(world);
  std::vector<torch::Tensor> e_grad(world), w_grad(world), w(world);
  // Built one after another: the default generator is shared by the threads.
  std::vector<MarginHead> heads;
  for (int r = 0; r < world; ++r) {
    torch::manual_seed(1);
    heads.emplace_back(D, C, marginPreset(loss), 1.0, group[r]);
    heads.back()->to(torch::kFloat64);
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      MarginHead head = heads[r];
      const int64_t per = N / world;
      auto e = emb.narrow(0, r * per, per).clone().requires_grad_(true);
      const auto l = head->forward(e, labels.narrow(0, r * per, per));
      l.backward();
      losses[r] = l.item<double>();
      e_grad[r] = e.grad();
      w_grad[r] = head->weight.grad();
      w[r] = head->weight.detach();
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) {
    SCOPED_TRACE(loss + " rank " + std::to_string(r));
    EXPECT_NEAR(losses[r], l_whole.item<double>(), 1e-10);
    const auto [b, e] = classShard(C, r, world);
    EXPECT_TRUE(torch::allclose(w[r], whole->weight.detach().narrow(0, b, e - b)));
    EXPECT_TRUE(torch::allclose(w_grad[r], whole->weight.grad().narrow(0, b, e - b), 1e-8, 1e-10));
    const int64_t per = N / world;
    EXPECT_TRUE(torch::allclose(e_grad[r], e_whole.grad().narrow(0, r * per, per), 1e-8, 1e-10));
  }
}

TEST(ShardedHead, EqualsOneHeadWithEveryClass) {
  for (const std::string loss : {"arcface", "cosface", "cml", "softmax"}) {
    expectShardedEqualsWhole(loss, 2);
    expectShardedEqualsWhole(loss, 3);
  }
}

// BatchNorm synchronised over ranks against one BatchNorm over the whole batch (nn.SyncBatchNorm's
// definition): outputs, running statistics, and the gradients of the input and, summed over ranks
// as data-parallel training sums them, of the weight and bias.
class GroupSync final : public msconv::nn::BatchSync {
 public:
  explicit GroupSync(std::shared_ptr<Collective> c) : c_(std::move(c)) {}
  void allReduceSum(std::vector<at::Tensor>& t) override { c_->allReduceSum(t); }

 private:
  std::shared_ptr<Collective> c_;
};

template <typename BN>
void expectSyncedEqualsWhole(const std::vector<int64_t>& shape, int world) {
  torch::manual_seed(3);
  const auto x = torch::randn(shape, torch::kFloat64) * 3 + 1;
  const auto dy = torch::randn(shape, torch::kFloat64);
  const int64_t C = shape[1];
  auto init = [&](BN& bn) {
    bn->to(torch::kFloat64);
    torch::NoGradGuard g;
    bn->weight.copy_(torch::linspace(0.5, 1.5, C, torch::kFloat64));
    bn->bias.copy_(torch::linspace(-0.2, 0.3, C, torch::kFloat64));
  };
  BN whole(C);
  init(whole);
  auto xw = x.clone().requires_grad_(true);
  (whole->forward(xw) * dy).sum().backward();
  const auto yw = whole->forward(x.clone()).detach();  // second batch: running stats move again

  auto group = threadGroup(world);
  std::vector<BN> bns;
  for (int r = 0; r < world; ++r) {
    bns.emplace_back(C);
    init(bns.back());
    msconv::nn::syncBatchNorm(*bns.back(), std::make_shared<GroupSync>(group[r]));
  }
  const int64_t per = shape[0] / world;
  std::vector<torch::Tensor> gx(world), y2(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      auto xr = x.narrow(0, r * per, per).clone().requires_grad_(true);
      (bns[r]->forward(xr) * dy.narrow(0, r * per, per)).sum().backward();
      gx[r] = xr.grad();
      y2[r] = bns[r]->forward(x.narrow(0, r * per, per).clone()).detach();
    });
  for (auto& t : threads) t.join();
  EXPECT_TRUE(torch::allclose(torch::cat(gx), xw.grad(), 1e-9, 1e-11));
  EXPECT_TRUE(torch::allclose(torch::cat(y2), yw, 1e-9, 1e-11));
  auto gw = torch::zeros_like(whole->weight), gb = torch::zeros_like(whole->bias);
  for (auto& b : bns) {
    gw += b->weight.grad();
    gb += b->bias.grad();
    EXPECT_TRUE(torch::allclose(b->running_mean, whole->running_mean, 1e-9, 1e-11));
    EXPECT_TRUE(torch::allclose(b->running_var, whole->running_var, 1e-9, 1e-11));
    EXPECT_EQ(b->num_batches_tracked.template item<int64_t>(), 2);
  }
  EXPECT_TRUE(torch::allclose(gw, whole->weight.grad(), 1e-9, 1e-11));
  EXPECT_TRUE(torch::allclose(gb, whole->bias.grad(), 1e-9, 1e-11));
  // Unsynchronised, each rank normalises its own share: the outputs differ.
  BN local(C);
  init(local);
  EXPECT_FALSE(torch::allclose(local->forward(x.narrow(0, 0, per)), yw.narrow(0, 0, per), 1e-3));
}

TEST(SyncBatchNorm, EqualsOneBatchNormOverEveryRanksSamples) {
  expectSyncedEqualsWhole<msconv::nn::BatchNorm2d>({6, 4, 5, 3}, 2);
  expectSyncedEqualsWhole<msconv::nn::BatchNorm2d>({6, 3, 1, 1}, 3);  // the gates' pooled maps
  expectSyncedEqualsWhole<msconv::nn::BatchNorm1d>({8, 5}, 2);        // the embedding's
}

TEST(GradScaler, SkipsOverflowBacksOffAndGrows) {
  GradScaler s(true, 1024.0, 2.0, 0.5, 3);
  auto p = torch::zeros({3}, torch::requires_grad());
  (s.scale(p.sum() * 2.0)).backward();
  EXPECT_FALSE(s.unscale({p}));
  EXPECT_TRUE(torch::allclose(p.grad(), torch::full({3}, 2.0)));  // unscaled back
  s.update(false);
  p.mutable_grad().fill_(std::numeric_limits<float>::infinity());
  EXPECT_TRUE(s.unscale({p}));
  s.update(true);
  EXPECT_DOUBLE_EQ(s.scaleValue(), 512.0);
  for (int i = 0; i < 3; ++i) s.update(false);
  EXPECT_DOUBLE_EQ(s.scaleValue(), 1024.0);
  GradScaler off(false);
  EXPECT_TRUE(torch::equal(off.scale(torch::ones({1})), torch::ones({1})));
}

TEST(Trainer, TwoRanksAgreeAndOnlyRankZeroWrites) {
  const std::string ws = ::testing::TempDir() + "/train_ws_ranks";
  fs::remove_all(ws);
  const Config c = Config::load(
      "", {"model.arch=msnet-tiny", "train.batch_size=4", "train.max_steps=3", "train.epochs=1",
           "train.threads=1", "data.threads=1", "train.log_every=1", "data.synthetic_identities=8",
           "data.synthetic_images_per_id=4", "data.val=", "seed=5"});
  // The synthetic set is generated once, before the ranks start.
  Trainer(Config::load("", {"model.arch=msnet-tiny", "train.batch_size=4", "train.max_steps=1",
                            "train.threads=1", "data.threads=1", "data.synthetic_identities=8",
                            "data.synthetic_images_per_id=4", "data.val=", "seed=5"}),
          ws, "warm")
      .run();
  auto group = threadGroup(2);
  std::vector<TrainResult> results(2);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        results[r] = Trainer(c, ws, "ranks", group[r]).run();
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  ASSERT_EQ(results[0].losses.size(), 3u);
  EXPECT_EQ(results[0].losses, results[1].losses);  // one replicated loss
  store::RunStore db(ws + "/runs.sqlite", store::RunStore::Access::kRead);
  EXPECT_EQ(db.runs().size(), 2u);  // "warm" and one "ranks": rank 1 created nothing
  EXPECT_TRUE(fs::exists(ws + "/runs/ranks/last.ckpt"));
  // The checkpoint holds the whole head: it resumes with one rank.
  Config more = c;
  more.set("train.max_steps", "4");
  const auto resumed = Trainer(more, ws).run(ws + "/runs/ranks/last.ckpt");
  EXPECT_EQ(resumed.steps, 3);  // the checkpoint's own configuration (3 steps) wins
}

TEST(Trainer, DeviceAndMixedPrecisionKeysAreChecked) {
  const std::string ws = ::testing::TempDir() + "/train_ws_device";
  Config c = Config::load("", {"model.arch=msnet-tiny", "data.val=", "train.device=tpu"});
  try {
    Trainer(c, ws).run();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.device"), std::string::npos);
  }
  c.set("train.device", "cpu");
  c.set("train.amp", "true");
  try {
    Trainer(c, ws).run();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.amp"), std::string::npos);
  }
}
