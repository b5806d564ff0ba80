#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <vector>

#include "msconv/error.h"
#include "msconv/store/run_store.h"

using namespace msconv;
using namespace msconv::store;
namespace fs = std::filesystem;

TEST(RunStore, RunsMetricsArtifactsAndUniqueNames) {
  const std::string ws = ::testing::TempDir() + "/store_a";
  fs::remove_all(ws);
  fs::create_directories(ws);
  RunStore db(ws + "/runs.sqlite", RunStore::Access::kWrite);
  const auto a = db.createRun("tiny", "{}", "msnet-tiny", "msconv");
  const auto b = db.createRun("tiny", "{}", "msnet-tiny", "skconv");
  EXPECT_EQ(b.name, "tiny-2");
  db.addMetrics(a.id, 10, {{"loss", 3.5}, {"lr", 0.1}});
  db.addMetrics(a.id, 20, {{"loss", 2.5}});
  db.addArtifact(a.id, "checkpoint", "/x/step-20.ckpt", 20);
  db.setStatus(a.id, RunStatus::kDone);
  EXPECT_EQ(db.run("tiny").status, store::RunStatus::kDone);
  EXPECT_EQ(db.run(std::to_string(b.id)).op, "skconv");
  const auto loss = db.metrics(a.id, "loss");
  ASSERT_EQ(loss.size(), 2u);
  EXPECT_EQ(loss[1].step, 20);
  EXPECT_DOUBLE_EQ(loss[1].value, 2.5);
  EXPECT_EQ(db.metrics(a.id).size(), 3u);
  EXPECT_EQ(db.artifacts(a.id).at(0).path, "/x/step-20.ckpt");
  EXPECT_THROW(db.run("nope"), Error);
}

TEST(RunStore, AKilledWriterLosesNothingAndIsMarkedInterrupted) {
  const std::string ws = ::testing::TempDir() + "/store_kill";
  fs::remove_all(ws);
  fs::create_directories(ws);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    RunStore db(ws + "/runs.sqlite", RunStore::Access::kWrite);
    const auto r = db.createRun("victim", "{}", "msnet-tiny", "msconv");
    for (int step = 1; step <= 50; ++step) db.addMetrics(r.id, step, {{"loss", 1.0 / step}});
    ::kill(::getpid(), SIGKILL);
    ::_exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  RunStore db(ws + "/runs.sqlite", RunStore::Access::kRead);
  const auto r = db.run("victim");
  EXPECT_EQ(r.status, store::RunStatus::kInterrupted);
  const auto loss = db.metrics(r.id, "loss");
  ASSERT_EQ(loss.size(), 50u);
  EXPECT_DOUBLE_EQ(loss.back().value, 1.0 / 50);
}

TEST(RunStore, AForeignFileIsAClearError) {
  const std::string ws = ::testing::TempDir() + "/store_bad";
  fs::create_directories(ws);
  FILE* f = std::fopen((ws + "/runs.sqlite").c_str(), "wb");
  std::fputs("definitely not a database, but long enough to look like a header ........", f);
  std::fclose(f);
  try {
    RunStore db(ws + "/runs.sqlite", RunStore::Access::kRead);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("runs.sqlite"), std::string::npos) << e.what();
  }
}

// Writers and readers that open one new store at the same moment (a training run and the
// workbench or `runs list` polling it) each wait for the other's lock: no writer ends up with a
// read-only store ("attempt to write a readonly database", as a CI run once saw) and no reader
// fails. Each round starts the processes together on a fresh file.
TEST(RunStore, ProcessesOpeningOneNewStoreTogetherAllGetWhatTheyAskedFor) {
  const std::string ws = ::testing::TempDir() + "/store_race";
  constexpr int kRounds = 12, kWriters = 4, kReaders = 4;
  for (int round = 0; round < kRounds; ++round) {
    fs::remove_all(ws);
    fs::create_directories(ws);
    const std::string file = ws + "/runs.sqlite";
    int go[2];
    ASSERT_EQ(::pipe(go), 0);
    std::vector<pid_t> kids;
    for (int k = 0; k < kWriters + kReaders; ++k) {
      const pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        ::close(go[1]);
        char c;
        if (::read(go[0], &c, 1) != 0) ::_exit(3);  // released together when the pipe closes
        try {
          if (k < kWriters) {
            RunStore db(file, RunStore::Access::kWrite);
            const auto r = db.createRun("w", "{}", "msnet-tiny", "msconv");
            for (int step = 1; step <= 10; ++step) db.addMetrics(r.id, step, {{"loss", 1.0}});
            db.setStatus(r.id, RunStatus::kDone);
          } else {
            RunStore db(file, RunStore::Access::kRead);
            for (int i = 0; i < 10; ++i) db.runs();
          }
        } catch (const std::exception& e) {
          std::fprintf(stderr, "process %d: %s\n", k, e.what());
          ::_exit(1);
        }
        ::_exit(0);
      }
      kids.push_back(pid);
    }
    ::close(go[0]);
    ::close(go[1]);
    for (pid_t pid : kids) {
      int status = 0;
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round;
    }
    RunStore db(file, RunStore::Access::kRead);
    const auto runs = db.runs();
    ASSERT_EQ(runs.size(), static_cast<size_t>(kWriters)) << "round " << round;
    for (const auto& r : runs) {
      EXPECT_EQ(r.status, RunStatus::kDone) << r.name;
      EXPECT_EQ(db.metrics(r.id, "loss").size(), 10u) << r.name;
    }
  }
}

TEST(RunStore, StatusNamesRoundTrip) {
  for (RunStatus s : {RunStatus::kRunning, RunStatus::kDone, RunStatus::kStopped,
                      RunStatus::kFailed, RunStatus::kInterrupted})
    EXPECT_EQ(parseStatus(statusName(s)), s) << statusName(s);
  EXPECT_STREQ(statusName(RunStatus::kInterrupted), "interrupted");
  EXPECT_EQ(parseStatus("paused-by-a-newer-build"), RunStatus::kUnknown);
}
