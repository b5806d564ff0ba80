// The telemetry format msconv-scope reads: round trip, a file still growing, a cut or corrupted
// tail (reported, the whole records kept), appending after a resume; and the trainer's records.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "msconv/error.h"
#include "msconv/telemetry/telemetry.h"
#include "msconv/train/trainer.h"

using namespace msconv;
using namespace msconv::telemetry;
namespace fs = std::filesystem;

namespace {

Header header() {
  Header h;
  h.layers = {"stem", "stage1.0"};
  h.gates = {"stage1.0.op"};
  h.groups = {"stem", "stage1.0", "head"};
  h.bins = 4;
  h.every = 5;
  return h;
}

Record record(int64_t step) {
  Record r;
  r.step = step;
  r.wall = 1000.5 + step;
  r.loss = 10.f / step;
  r.layers = {{0.1f * step, 1.f, 3.f, 0.f}, {0.2f, 0.5f, 2.f, 0.25f}};
  r.grad_norms = {1.f, 2.f, 0.5f * step};
  r.gates = {{0.1f, 0.2f, 0.3f, 0.4f}};
  return r;
}

}  // namespace

TEST(Telemetry, RoundTripGrowingAndCutFiles) {
  const std::string path = ::testing::TempDir() + "/tel.bin";
  {
    Writer w(path, header());
    w.write(record(5));
    auto r = read(path);
    EXPECT_EQ(r.records.size(), 1u);
    w.write(record(10));
    EXPECT_EQ(readMore(path, r), 1u);  // the file grew: one more record
    ASSERT_EQ(r.records.size(), 2u);
    EXPECT_EQ(r.records[1].step, 10);
    EXPECT_FLOAT_EQ(r.records[1].grad_norms[2], 5.f);
    EXPECT_FLOAT_EQ(r.records[1].gates[0][3], 0.4f);
    EXPECT_EQ(r.header.gates, header().gates);
    EXPECT_TRUE(r.problem.empty());
    Record bad = record(15);
    bad.grad_norms.pop_back();
    EXPECT_THROW(w.write(bad), Error);
  }
  // Cut in the middle of the second record: the first stays, the cut is described.
  const auto full = fs::file_size(path);
  fs::resize_file(path, full - 7);
  auto r = read(path);
  EXPECT_EQ(r.records.size(), 1u);
  EXPECT_NE(r.problem.find("incomplete"), std::string::npos) << r.problem;
  // A flipped byte inside a record fails its checksum.
  fs::resize_file(path, full);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(full - 20));
    f.put('\x7f');
  }
  r = read(path);
  EXPECT_EQ(r.records.size(), 1u);
  EXPECT_NE(r.problem.find("checksum"), std::string::npos) << r.problem;
  // Appending (a resumed run) drops the torn record first.
  fs::resize_file(path, full - 7);
  {
    Writer w = Writer::append(path, header());
    w.write(record(10));
  }
  r = read(path);
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_TRUE(r.problem.empty());
  Header other = header();
  other.bins = 8;
  EXPECT_THROW(Writer::append(path, other), Error);
  // Not telemetry at all / missing.
  std::ofstream(::testing::TempDir() + "/not.bin") << "hello";
  EXPECT_THROW(read(::testing::TempDir() + "/not.bin"), Error);
  EXPECT_THROW(read(::testing::TempDir() + "/missing.bin"), Error);
}

TEST(Telemetry, TrainerWritesPerLayerRecords) {
  const std::string ws = ::testing::TempDir() + "/tel_ws";
  fs::remove_all(ws);
  const auto c = config::Config::load(
      "", {"model.arch=msnet-tiny", "train.batch_size=8", "train.max_steps=6", "train.threads=1",
           "data.threads=1", "data.synthetic_identities=6", "data.synthetic_images_per_id=4",
           "data.val=", "telemetry.every=2"});
  train::Trainer(c, ws, "t").run();
  const auto r = read(ws + "/runs/t/telemetry.bin");
  ASSERT_EQ(r.records.size(), 3u);  // steps 2, 4, 6
  EXPECT_EQ(r.records[2].step, 6);
  EXPECT_EQ(r.header.gates.size(), 4u);  // one MSConv per stage in msnet-tiny
  EXPECT_EQ(r.header.layers.front(), "stem");
  EXPECT_EQ(r.header.groups.back(), "head");
  for (const auto& rec : r.records) {
    for (float g : rec.grad_norms) EXPECT_GT(g, 0.f);
    for (const auto& h : rec.gates) {
      float sum = 0;
      for (float v : h) sum += v;
      EXPECT_NEAR(sum, 1.f, 1e-4);  // every gate value lands in a bin
    }
    EXPECT_GT(rec.layers[1].std, 0.f);
  }
}
