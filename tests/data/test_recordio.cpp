#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "msconv/atomic_file.h"
#include "msconv/data/dataset.h"
#include "msconv/data/decode.h"
#include "msconv/data/recordio.h"
#include "msconv/error.h"
#include "test_util.h"

using namespace msconv;
using namespace msconv::data;
namespace fs = std::filesystem;

namespace {

nlohmann::json manifest() {
  std::ifstream f(test::dataFixtureDir() + "/manifest.json");
  return nlohmann::json::parse(f);
}

using test::errorOf;

std::string magicBytes() {
  return std::string(reinterpret_cast<const char*>(&kRecordMagic), 4);
}

}  // namespace

TEST(RecordIO, RoundTripSplitsAroundTheMagic) {
  const std::string prefix = ::testing::TempDir() + "/rt";
  std::mt19937 rng(1);
  std::vector<std::string> payloads;
  for (int i = 0; i < 40; ++i) {
    std::string p(rng() % 300, '\0');
    for (auto& c : p) c = static_cast<char>(rng());
    if (i % 3 == 0 && p.size() >= 16) p.replace((rng() % (p.size() / 4 - 1)) * 4, 4, magicBytes());
    if (i % 5 == 0) p += magicBytes() + magicBytes();  // at the end, maybe unaligned
    payloads.push_back(p);
  }
  {
    RecordWriter w(prefix);
    for (size_t i = 0; i < payloads.size(); ++i) w.write(100 + i, payloads[i]);
    w.finish();
  }
  RecordReader r(prefix + ".rec");
  ASSERT_EQ(r.size(), payloads.size());
  for (size_t i = payloads.size(); i-- > 0;) EXPECT_EQ(r.readPayload(100 + i), payloads[i]) << i;
}

// A write, fsync or rename of a pack that fails (a full disk, EIO) at any point: the error names
// the file and the cause, and the pack that was there before stays whole beside its index, with no
// temporary file.
TEST(RecordIO, AFailedPackLeavesThePreviousOneWhole) {
  const std::string dir = ::testing::TempDir() + "/rec_faults";
  fs::remove_all(dir);
  const std::string prefix = dir + "/pack";
  const std::vector<std::string> before = {"old-0", "old-1"};
  auto pack = [&](const std::vector<std::string>& payloads) {
    RecordWriter w(prefix);
    for (size_t i = 0; i < payloads.size(); ++i) w.write(i, payloads[i]);
    w.finish();
  };
  pack(before);
  std::vector<std::string> after;
  for (int i = 0; i < 300; ++i) after.push_back(std::string(9000, static_cast<char>('a' + i % 26)));
  failNthFileOperation(0, 0);
  pack(after);
  const int64_t ops = failNthFileOperation(0, 0);
  ASSERT_GT(ops, 5);  // records over more than one buffer, two fsyncs, two renames
  pack(before);
  for (int64_t n = 1; n <= ops; ++n) {
    SCOPED_TRACE("operation " + std::to_string(n));
    const int err = n % 2 ? ENOSPC : EIO;
    failNthFileOperation(n, err);
    const std::string message = errorOf([&] { pack(after); });
    failNthFileOperation(0, 0);
    EXPECT_NE(message.find(std::strerror(err)), std::string::npos) << message;
    EXPECT_NE(message.find(prefix + "."), std::string::npos) << message;
    for (const auto& e : fs::directory_iterator(dir))
      EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
    if (!fs::exists(prefix + ".rec")) {  // the index failed after the records: neither stands
      EXPECT_FALSE(fs::exists(prefix + ".idx"));
      pack(before);
      continue;
    }
    RecordReader r(prefix + ".rec");
    ASSERT_EQ(r.size(), before.size());
    for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(r.readPayload(i), before[i]);
  }
}

TEST(RecordIO, ReadsFilesFromAnIndependentWriter) {
  const auto m = manifest();
  const auto ds = openRecordDataset(test::dataFixtureDir() + "/insightface.rec");
  ASSERT_EQ(ds->size(), m["images"].get<size_t>());
  EXPECT_EQ(ds->numClasses(), m["classes"].get<int>());
  for (size_t i = 0; i < ds->size(); ++i) {
    EXPECT_EQ(ds->label(i), m["labels"][i].get<int>()) << i;
    char name[32];
    std::snprintf(name, sizeof name, "/img_%02zu.pnm", i);
    EXPECT_EQ(ds->encoded(i), readFile(test::dataFixtureDir() + name))
        << i;  // split records re-joined
    const cv::Mat img = decodeFace(ds->encoded(i), ds->describe(i));
    EXPECT_EQ(img.rows, 112);
    EXPECT_EQ(img.channels(), 3);
  }
}

TEST(RecordIO, FilesWithoutAHeaderTakeLabelsFromEachRecord) {
  const auto m = manifest();
  const auto ds = openRecordDataset(test::dataFixtureDir() + "/noheader.rec");
  ASSERT_EQ(ds->size(), m["images"].get<size_t>());
  EXPECT_EQ(ds->numClasses(), m["classes"].get<int>());
  // Keys are visited in key order; key k holds image k - 10.
  for (size_t i = 0; i < ds->size(); ++i) EXPECT_EQ(ds->label(i), m["labels"][i].get<int>());
}

TEST(RecordIO, BadFilesNameTheFileKeyAndOffset) {
  const std::string dir = ::testing::TempDir() + "/bad";
  fs::create_directories(dir);
  const std::string good = test::dataFixtureDir() + "/insightface";
  fs::copy_file(good + ".rec", dir + "/a.rec", fs::copy_options::overwrite_existing);
  fs::copy_file(good + ".idx", dir + "/a.idx", fs::copy_options::overwrite_existing);
  {
    std::fstream f(dir + "/a.rec", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.write("BADM", 4);  // wrong magic at key 0
  }
  RecordReader r(dir + "/a.rec");
  EXPECT_NE(errorOf([&] { r.readPayload(0); }).find("key 0: wrong magic 0x4d444142 at byte 0"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { r.readPayload(999); }).find("key 999 is not in"), std::string::npos);
  // Truncated file: the index points past the end.
  fs::resize_file(dir + "/a.rec", 100);
  EXPECT_NE(errorOf([&] { RecordReader t(dir + "/a.rec"); }).find("past the end"),
            std::string::npos);
  std::ofstream(dir + "/b.rec") << "";
  std::ofstream(dir + "/b.idx") << "0\t0\nnot a line\n";
  EXPECT_NE(errorOf([&] { RecordReader t(dir + "/b.rec"); }).find("b.idx:1"), std::string::npos);
  EXPECT_NE(errorOf([&] { RecordReader t(dir + "/missing.rec"); }).find("missing.rec"),
            std::string::npos);
}

TEST(RecordIO, CorruptedBytesNeverCrashTheReaders) {
  const std::string src = test::dataFixtureDir() + "/insightface";
  const std::string rec = readFile(src + ".rec"), idx = readFile(src + ".idx");
  const std::string dir = ::testing::TempDir() + "/fuzz";
  fs::create_directories(dir);
  std::mt19937 rng(5);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string r = rec, x = idx;
    if (trial % 3 == 0)
      r.resize(rng() % r.size());
    else if (trial % 3 == 1)
      for (int k = 0; k < 6; ++k) r[rng() % r.size()] ^= static_cast<char>(1 + rng() % 255);
    else
      x[rng() % x.size()] = static_cast<char>(rng());
    std::ofstream(dir + "/f.rec", std::ios::binary) << r;
    std::ofstream(dir + "/f.idx", std::ios::binary) << x;
    try {
      const auto ds = openRecordDataset(dir + "/f.rec");
      for (size_t i = 0; i < ds->size(); ++i) decodeFace(ds->encoded(i), ds->describe(i));
    } catch (const Error& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find("f."), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(errors, 100);
}
