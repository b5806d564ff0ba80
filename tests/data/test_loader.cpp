#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "msconv/data/dataset.h"
#include "msconv/data/loader.h"
#include "msconv/data/synth.h"
#include "msconv/error.h"

using namespace msconv;
using namespace msconv::data;
namespace fs = std::filesystem;

namespace {
std::shared_ptr<const FaceDataset> smallSet() {
  static const std::string dir = [] {
    const std::string d = ::testing::TempDir() + "/loader_set";
    SynthOptions o;
    o.identities = 10;
    o.images_per_id = 5;
    o.pairs = 0;
    generateSyntheticFaces(d, o);
    return d;
  }();
  return openTrainingSet(dir);
}

std::vector<Batch> drain(DataLoader& l, int64_t epoch) {
  l.startEpoch(epoch);
  std::vector<Batch> out;
  while (auto b = l.next()) out.push_back(std::move(*b));
  return out;
}
}  // namespace

TEST(Loader, DeterministicOrderAndPixelsPerSeed) {
  LoaderOptions o;
  o.batch_size = 8;
  o.seed = 7;
  DataLoader a(smallSet(), o), b(smallSet(), o);
  const auto ea = drain(a, 0), eb = drain(b, 0), e1 = drain(a, 1);
  ASSERT_EQ(ea.size(), 6u);  // 50 samples, batch 8, drop_last
  for (size_t i = 0; i < ea.size(); ++i) {
    EXPECT_EQ(ea[i].samples, eb[i].samples);
    EXPECT_TRUE(ea[i].images.equal(eb[i].images));
    EXPECT_EQ(ea[i].images.sizes(), (std::vector<int64_t>{8, 3, 112, 112}));
    EXPECT_LE(ea[i].images.max().item<float>(), 1.f);
    EXPECT_GE(ea[i].images.min().item<float>(), -1.f);
  }
  EXPECT_NE(ea[0].samples, e1[0].samples);  // reshuffled per epoch
}

TEST(Loader, ShardsAreDisjointAndCoverTheEpoch) {
  std::set<int64_t> seen;
  size_t total = 0;
  for (int rank = 0; rank < 3; ++rank) {
    LoaderOptions o;
    o.rank = rank;
    o.world = 3;
    o.seed = 1;
    DataLoader l(smallSet(), o);
    for (auto s : l.epochOrder(2)) seen.insert(s), ++total;
  }
  EXPECT_EQ(total, 48u);  // 50 / 3 = 16 each
  EXPECT_EQ(seen.size(), 48u);
  EXPECT_THROW(DataLoader(smallSet(),
                          [] {
                            LoaderOptions o;
                            o.rank = 3;
                            o.world = 3;
                            return o;
                          }()),
               Error);
}

TEST(Loader, FlipAndChannelsLast) {
  LoaderOptions o;
  o.batch_size = 10;
  o.shuffle = false;
  o.flip = false;
  DataLoader plain(smallSet(), o);
  o.flip = true;
  DataLoader flipped(smallSet(), o);
  o.channels_last = true;
  DataLoader nhwc(smallSet(), o);
  const auto p = drain(plain, 0)[0].images, f = drain(flipped, 0)[0].images,
             n = drain(nhwc, 0)[0].images;
  int mirrored = 0, same = 0;
  for (int i = 0; i < 10; ++i) {
    if (f[i].equal(p[i].flip({2})))
      ++mirrored;
    else if (f[i].equal(p[i]))
      ++same;
  }
  EXPECT_EQ(mirrored + same, 10);
  EXPECT_GT(mirrored, 0);
  EXPECT_GT(same, 0);
  EXPECT_TRUE(n.equal(f));
  EXPECT_TRUE(n.is_contiguous(torch::MemoryFormat::ChannelsLast));
}

TEST(Loader, BadImagesFailWithTheirNameOrAreSkippedAndCounted) {
  const std::string d = ::testing::TempDir() + "/loader_bad";
  fs::create_directories(d + "/a");
  fs::create_directories(d + "/b");
  cv::Mat img(112, 112, CV_8UC3, cv::Scalar(10, 20, 30));
  for (int i = 0; i < 5; ++i) {
    cv::imwrite(d + "/a/" + std::to_string(i) + ".png", img);
    cv::imwrite(d + "/b/" + std::to_string(i) + ".png", img);
  }
  std::ofstream(d + "/b/2.png") << "not a png";
  LoaderOptions o;
  o.batch_size = 5;
  o.shuffle = false;
  {
    DataLoader l(openFolderDataset(d), o);
    l.startEpoch(0);
    try {
      while (l.next()) {
      }
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("b/2.png: cannot decode"), std::string::npos)
          << e.what();
    }
  }
  o.skip_bad = true;
  DataLoader l(openFolderDataset(d), o);
  const auto batches = drain(l, 0);
  int64_t n = 0;
  for (const auto& b : batches) n += b.images.size(0);
  EXPECT_EQ(n, 9);
  EXPECT_EQ(l.skipped(), 1);
}
