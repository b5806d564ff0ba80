// The training engine on a tiny model and a tiny synthetic set: a stopped-and-resumed run gives
// exactly the losses of an uninterrupted one; NaN stops the run; schedules.
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "msconv/atomic_file.h"
#include "msconv/error.h"
#include "msconv/store/run_store.h"
#include "msconv/train/trainer.h"
#include "test_util.h"

using namespace msconv;
using namespace msconv::train;
namespace fs = std::filesystem;

namespace {
Config tiny() {
  return Config::load(
      "", {"model.arch=msnet-tiny", "train.batch_size=8", "train.epochs=3", "train.lr=0.05",
           "train.threads=1", "data.threads=1", "train.log_every=1", "data.synthetic_identities=8",
           "data.synthetic_images_per_id=4", "data.val=", "seed=3"});
}
}  // namespace

TEST(Trainer, ResumeContinuesExactly) {
  const std::string ws = ::testing::TempDir() + "/train_ws";
  fs::remove_all(ws);
  Trainer whole(tiny(), ws, "whole");
  const TrainResult a = whole.run();
  ASSERT_EQ(a.losses.size(), 12u);  // 32 images / 8 = 4 steps per epoch, 3 epochs
  EXPECT_EQ(a.status, store::RunStatus::kDone);

  Trainer first(tiny(), ws, "split");
  first.addObserver([&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::kStep && e.step == 5) first.requestStop();
  });
  const TrainResult b1 = first.run();
  EXPECT_EQ(b1.status, store::RunStatus::kStopped);
  EXPECT_EQ(b1.steps, 5);
  Trainer second(tiny(), ws);
  const TrainResult b2 = second.run("split");
  ASSERT_EQ(b2.losses.size(), 7u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(b1.losses[i], a.losses[i]) << "step " << i + 1;
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(b2.losses[i], a.losses[5 + i]) << "step " << i + 6;
  EXPECT_EQ(b2.status, store::RunStatus::kDone);
  store::RunStore db(ws + "/runs.sqlite", store::RunStore::Access::kRead);
  EXPECT_EQ(db.run("split").status, store::RunStatus::kDone);
  EXPECT_EQ(db.metrics(db.run("split").id, "loss").size(), 12u);
  for (double l : a.losses) EXPECT_TRUE(std::isfinite(l));
}

TEST(Trainer, NaNLossStopsTheRunAndNamesTheCheckpoint) {
  const std::string ws = ::testing::TempDir() + "/train_nan";
  fs::remove_all(ws);
  Config c = tiny();
  c.set("train.lr", "1e6");
  c.set("train.clip_grad", "0");
  c.set("train.checkpoint_every", "1");
  Trainer t(c, ws, "nan");
  try {
    t.run();
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_TRUE(m.find("the loss is NaN") != std::string::npos ||
                m.find("the loss is infinite") != std::string::npos)
        << m;
    EXPECT_NE(m.find("last good checkpoint"), std::string::npos) << m;
  }
  store::RunStore db(ws + "/runs.sqlite", store::RunStore::Access::kRead);
  EXPECT_EQ(db.run("nan").status, store::RunStatus::kFailed);
  EXPECT_TRUE(fs::exists(ws + "/runs/nan/last.ckpt"));
}

TEST(Trainer, Schedules) {
  Config c;
  EXPECT_DOUBLE_EQ(learningRate(c, 0, 100, 10), 0.02);
  EXPECT_NEAR(learningRate(c, 50, 100, 10), 5e-6 + (0.02 - 5e-6) * 0.5, 1e-12);
  EXPECT_NEAR(learningRate(c, 100, 100, 10), 5e-6, 1e-12);
  c.set("train.schedule", "poly");
  c.set("train.warmup_epochs", "1");
  EXPECT_NEAR(learningRate(c, 4, 100, 10), 0.02 * 5 / 10, 1e-12);
  EXPECT_NEAR(learningRate(c, 55, 100, 10), 0.02 * std::pow(0.5, 2), 1e-12);
  c.set("train.schedule", "constant");
  EXPECT_DOUBLE_EQ(learningRate(c, 70, 100, 10), 0.02);
}

TEST(Trainer, AccumulationTakesSeveralBatchesPerStep) {
  const std::string ws = ::testing::TempDir() + "/train_accum";
  fs::remove_all(ws);
  Config c = tiny();
  c.set("train.accum", "2");
  c.set("train.schedule", "constant");
  Trainer t(c, ws, "accum");
  int64_t steps_seen = 0;
  t.addObserver([&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::kStep) {
      ++steps_seen;
      EXPECT_DOUBLE_EQ(e.lr, 0.05);
    }
  });
  const TrainResult r = t.run();
  EXPECT_EQ(r.steps, 6);  // 4 batches per epoch, 2 per step, 3 epochs
  EXPECT_EQ(steps_seen, 6);
  c.set("train.accum", "8");
  Trainer too_many(c, ws, "accum8");
  EXPECT_NE(test::errorOf([&] { too_many.run(); }).find("make no full batch"), std::string::npos);
}

// A write, fsync or rename that fails (ENOSPC, EIO) at any point of a run, in a checkpoint or in
// the run store: the run fails naming the file and the cause, it is marked failed with that
// reason (where it had a row yet), the store's rows match the files, no temporary file remains,
// and the last good checkpoint resumes to exactly the uninterrupted run's losses.
TEST(Trainer, AFailedWriteLosesNothing) {
  const std::string ws = ::testing::TempDir() + "/train_faults";
  fs::remove_all(ws);
  Config c = tiny();
  c.set("train.epochs", "1");
  c.set("train.max_steps", "6");
  c.set("train.checkpoint_every", "2");
  c.set("telemetry.every", "0");
  Trainer(c, ws, "warm").run();  // the synthetic set, generated once for every run below
  failNthFileOperation(0, 0);
  const TrainResult clean = Trainer(c, ws, "clean").run();
  const int64_t ops = failNthFileOperation(0, 0);  // writes, fsyncs and renames of one run
  ASSERT_GT(ops, 12);  // three checkpoints and the store's rows at least
  std::vector<int64_t> at = {1, 2, 3, ops - 2, ops - 1, ops};
  for (int64_t n = 4; n < ops - 2; n += std::max<int64_t>(1, ops / 16)) at.push_back(n);
  std::cout << ops << " file operations (checkpoints and store) in a clean run; faults injected at "
            << at.size() << " of them\n";
  const std::string store_file = ws + "/runs.sqlite";
  int in_store = 0, in_checkpoints = 0, absorbed = 0;
  for (const int64_t n : at) {
    const int err = n % 2 ? ENOSPC : EIO;
    const std::string name = "fault-" + std::to_string(n);
    SCOPED_TRACE(name);
    failNthFileOperation(n, err);
    TrainResult faulted;
    const std::string message = test::errorOf([&] { faulted = Trainer(c, ws, name).run(); });
    failNthFileOperation(0, 0);
    if (message ==
        "no error") {  // SQLite absorbed it (its closing checkpoint of the log retries later)
      EXPECT_EQ(faulted.status, store::RunStatus::kDone);
      EXPECT_EQ(faulted.losses, clean.losses);
      ++absorbed;
      continue;
    }
    EXPECT_NE(message.find(std::strerror(err)), std::string::npos) << message;
    const bool store_fault = message.find(store_file + ":") != std::string::npos;
    EXPECT_TRUE(store_fault || message.find(ws + "/runs/" + name + "/") != std::string::npos)
        << message;
    (store_fault ? in_store : in_checkpoints) += 1;
    store::RunStore db(store_file, store::RunStore::Access::kRead);
    const auto row = db.findRun(name);
    if (!row) {  // the run's own row could not be written: nothing was trained
      EXPECT_TRUE(store_fault) << message;
      EXPECT_FALSE(fs::exists(ws + "/runs/" + name)) << "a folder without a row";
      continue;
    }
    EXPECT_EQ(row->status, store::RunStatus::kFailed);
    // The store's rows match the files: every checkpoint it lists exists, and the logged losses
    // are the steps 1..k in order.
    for (const auto& a : db.artifacts(row->id)) EXPECT_TRUE(fs::exists(a.path)) << a.path;
    const auto logged = db.metrics(row->id, "loss");
    for (size_t i = 0; i < logged.size(); ++i) EXPECT_EQ(logged[i].step, int64_t(i) + 1);
    for (const auto& e : fs::directory_iterator(ws + "/runs/" + name))
      EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
    const std::string last = ws + "/runs/" + name + "/last.ckpt";
    if (!fs::exists(last)) continue;  // the first checkpoint failed: nothing to resume
    const TrainResult resumed = Trainer(c, ws).run(name);
    EXPECT_EQ(resumed.status, store::RunStatus::kDone);
    ASSERT_LE(resumed.losses.size(), clean.losses.size());
    const size_t from = clean.losses.size() - resumed.losses.size();
    for (size_t i = 0; i < resumed.losses.size(); ++i)
      EXPECT_EQ(resumed.losses[i], clean.losses[from + i]) << "step " << from + i + 1;
    const auto after = db.metrics(row->id, "loss");
    ASSERT_EQ(after.size(), clean.losses.size());
    for (size_t i = 0; i < after.size(); ++i) {
      EXPECT_EQ(after[i].step, int64_t(i) + 1);
      EXPECT_FLOAT_EQ(after[i].value, clean.losses[i]) << "step " << i + 1;
    }
  }
  std::cout << in_store << " faults failed a store write, " << in_checkpoints
            << " a checkpoint; SQLite absorbed " << absorbed << "\n";
  EXPECT_GT(in_store, 0);
  EXPECT_GT(in_checkpoints, 0);
}
