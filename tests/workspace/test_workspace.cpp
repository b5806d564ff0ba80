// The workspace module alone: the layout, checkpoint resolution, the queue file, metric names and
// the training checkpoint's reader against its writer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "msconv/atomic_file.h"
#include "msconv/error.h"
#include "msconv/eval/metric_name.h"
#include "msconv/store/run_store.h"
#include "msconv/workspace/workspace.h"

using namespace msconv;
using namespace msconv::workspace;
namespace fs = std::filesystem;

namespace test {
// The message of the msconv::Error that f throws, or "no error" (test_util.h without LibTorch).
std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace test

TEST(Workspace, LayoutAndResolution) {
  const std::string root = ::testing::TempDir() + "/ws_layout";
  fs::remove_all(root);
  const Workspace ws(root);
  EXPECT_EQ(Workspace("").root(), kDefaultWorkspace);
  EXPECT_EQ(ws.storeFile(), root + "/runs.sqlite");
  EXPECT_EQ(ws.queueFile(), root + "/lab-queue.json");
  EXPECT_EQ(ws.runDir("a"), root + "/runs/a");
  EXPECT_EQ(ws.runFile("a", RunFile::kBestCheckpoint), root + "/runs/a/best.ckpt");
  EXPECT_EQ(ws.stepCheckpoint("a", 40), root + "/runs/a/step-40.ckpt");
  // Resolution: no store, a run without checkpoints, last.ckpt, then best.ckpt preferred.
  EXPECT_NE(test::errorOf([&] { ws.resolveCheckpoint("a"); }).find("no run store"),
            std::string::npos);
  const auto run = ws.openStoreToWrite()->createRun("a", "{}", "msnet-tiny", "msconv");
  EXPECT_EQ(ws.runCheckpoint("a"), "");
  EXPECT_NE(test::errorOf([&] { ws.resolveCheckpoint("a"); }).find("no checkpoint yet"),
            std::string::npos);
  EXPECT_NE(test::errorOf([&] { ws.resolveCheckpoint("zz"); }).find("neither a checkpoint file"),
            std::string::npos);
  fs::create_directories(ws.runDir("a"));
  std::ofstream(ws.runFile("a", RunFile::kLastCheckpoint)) << "x";
  EXPECT_EQ(ws.resolveCheckpoint("a"), ws.runFile("a", RunFile::kLastCheckpoint));
  EXPECT_EQ(ws.resolveCheckpoint(std::to_string(run.id)),
            ws.runFile("a", RunFile::kLastCheckpoint));
  std::ofstream(ws.runFile("a", RunFile::kBestCheckpoint)) << "x";
  EXPECT_EQ(ws.resolveCheckpoint("a"), ws.runFile("a", RunFile::kBestCheckpoint));
  const std::string loose = ::testing::TempDir() + "/loose.ckpt";
  std::ofstream(loose) << "x";
  EXPECT_EQ(ws.resolveCheckpoint(loose), loose);
  // Which workspace a checkpoint belongs to.
  const auto of = Workspace::ofCheckpoint(ws.runFile("a", RunFile::kBestCheckpoint));
  ASSERT_TRUE(of.has_value());
  EXPECT_EQ(fs::canonical(of->root()), fs::canonical(root));
  EXPECT_FALSE(Workspace::ofCheckpoint(loose).has_value());
  EXPECT_EQ(ws.runFolders(), std::vector<std::string>{"a"});
  // A failed run's error is the last "error: " line of its log.
  std::ofstream(ws.runFile("a", RunFile::kLog)) << "step 1\nerror: first\nerror: the last one\n";
  EXPECT_EQ(ws.runError("a"), "the last one");
}

TEST(Workspace, QueueFileRoundTripAndBadFiles) {
  const std::string root = ::testing::TempDir() + "/ws_queue";
  fs::remove_all(root);
  const Workspace ws(root);
  EXPECT_TRUE(readQueue(ws.queueFile()).empty());  // no file: an empty queue
  const std::vector<QueuedRun> q = {
      {"a", {"model.op=skconv", "train.lr=0.1"}}, {"b", {}}, {"c", {}, true}, {"d", {}, false, 4}};
  writeQueue(ws.queueFile(), q);
  EXPECT_EQ(readQueue(ws.queueFile()), q);
  EXPECT_TRUE(readQueue(ws.queueFile())[2].resume);
  EXPECT_EQ(readQueue(ws.queueFile())[0].processes, 1);  // absent: one process
  EXPECT_EQ(readQueue(ws.queueFile())[3].processes, 4);
  for (const auto& entry : fs::directory_iterator(root))  // no temporary file left beside it
    EXPECT_EQ(entry.path().filename(), "lab-queue.json");
  auto bad = [&](const std::string& text) {
    std::ofstream(ws.queueFile()) << text;
    return test::errorOf([&] { readQueue(ws.queueFile()); });
  };
  EXPECT_NE(bad("{\"queue\": [").find("lab-queue.json: not a run queue"), std::string::npos);
  EXPECT_NE(bad("{\"runs\": []}").find("no \"queue\" list"), std::string::npos);
  EXPECT_NE(bad("{\"queue\": [{\"name\": \"a\"}]}").find("queue entry 0"), std::string::npos);
  EXPECT_NE(bad("{\"queue\": [{\"name\": \"a\", \"settings\": [1]}]}").find("queue entry 0"),
            std::string::npos);
  EXPECT_NE(bad("{\"queue\": [{\"name\": \"a\", \"settings\": [], \"resume\": 1}]}")
                .find("\"resume\" must be true or false"),
            std::string::npos);
  for (const char* n : {"0", "1.5", "\"2\"", "2000"})
    EXPECT_NE(bad(std::string("{\"queue\": [{\"name\": \"a\", \"settings\": [], \"processes\": ") +
                  n + "}]}")
                  .find("\"processes\" must be a whole number"),
              std::string::npos)
        << n;
  // An atomic write into a folder that cannot be written names the file and the cause.
  EXPECT_NE(test::errorOf([&] {
              writeFileAtomically("/proc/msconv-no/x.json", "{}");
            }).find("/proc/msconv-no/x.json: cannot write"),
            std::string::npos);
}

TEST(MetricName, TextFormsParseAndRoundTrip) {
  using eval::MetricName;
  const auto acc = MetricName::accuracy("lfw.bin");
  EXPECT_EQ(acc.str(), "val/lfw.bin/accuracy");
  EXPECT_EQ(acc.label(), "lfw.bin/accuracy");
  const auto tar = MetricName::tarAtFar("cfp_fp.bin", 1e-3);
  EXPECT_EQ(tar.str(), "val/cfp_fp.bin/tar@far=1e-03");
  EXPECT_EQ(tar.metric(), "tar@far=1e-03");
  for (const std::string key :
       {"val/lfw.bin/accuracy", "val/lfw.bin/accuracy_std", "val/x.bin/xnorm",
        "val/agedb_30.bin/tar@far=1e-01", "val/a/b.bin/tar@far=1e-04", "val/x.bin/auc"}) {
    const auto m = MetricName::parse(key);
    ASSERT_TRUE(m.has_value()) << key;
    EXPECT_EQ(m->str(), key);
  }
  EXPECT_EQ(MetricName::parse("lfw.bin/tar@far=1e-02")->far, 1e-2);  // the label form too
  EXPECT_EQ(MetricName::parse("val/a/b.bin/tar@far=1e-04")->set, "a/b.bin");
  EXPECT_TRUE(MetricName::parse("val/x.bin/accuracy")->compared());
  EXPECT_FALSE(MetricName::parse("val/x.bin/xnorm")->compared());
  EXPECT_FALSE(MetricName::parse("val/x.bin/auc")->compared());  // reports show it, tables not
  for (const std::string bad : {"loss", "lr", "val/x.bin/aucc", "val/x.bin/tar@far=",
                                "val/x.bin/tar@far=2", "val/x.bin/tar@far=1e-3x", "/accuracy"})
    EXPECT_FALSE(MetricName::parse(bad).has_value()) << bad;
}
