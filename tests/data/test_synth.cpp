#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/imgproc.hpp>

#include "msconv/data/dataset.h"
#include "msconv/data/decode.h"
#include "msconv/data/pairs.h"
#include "msconv/data/synth.h"

using namespace msconv::data;
namespace fs = std::filesystem;

namespace {
double distance(const cv::Mat& a, const cv::Mat& b) {
  return cv::norm(a, b, cv::NORM_L2);
}

// Mean over images of one identity: nuisances average out, traits stay.
cv::Mat meanFace(uint64_t seed, int id, int n = 24) {
  cv::Mat acc = cv::Mat::zeros(112, 112, CV_32FC3);
  for (int k = 0; k < n; ++k) {
    cv::Mat f;
    renderFace(identityTraits(seed, id), imageNuisance(seed, id, k)).convertTo(f, CV_32FC3);
    acc += f / n;
  }
  return acc;
}
}  // namespace

TEST(Synth, SameSeedSameBytesOtherSeedOtherFaces) {
  SynthOptions o;
  o.identities = 6;
  o.images_per_id = 3;
  o.pairs = 8;
  o.val_identities = 4;
  const std::string a = ::testing::TempDir() + "/sa", b = ::testing::TempDir() + "/sb",
                    c = ::testing::TempDir() + "/sc";
  generateSyntheticFaces(a, o);
  o.threads = 1;  // thread count must not change the output
  generateSyntheticFaces(b, o);
  o.seed = 2;
  generateSyntheticFaces(c, o);
  const auto da = openTrainingSet(a), db = openTrainingSet(b), dc = openTrainingSet(c);
  ASSERT_EQ(da->size(), 18u);
  EXPECT_EQ(da->numClasses(), 6);
  int differ = 0;
  for (size_t i = 0; i < da->size(); ++i) {
    EXPECT_EQ(da->encoded(i), db->encoded(i));
    differ += da->encoded(i) != dc->encoded(i);
  }
  EXPECT_EQ(differ, 18);
  EXPECT_EQ(readPairsBin(a + "/val.bin").images, readPairsBin(b + "/val.bin").images);
}

TEST(Synth, LookAlikesAreCloserThanStrangersButNotIdentical) {
  const uint64_t seed = 4;
  double sibling = 0, stranger = 0;
  for (int fam = 0; fam < 4; ++fam) {
    const cv::Mat a = meanFace(seed, 2 * fam), b = meanFace(seed, 2 * fam + 1),
                  c = meanFace(seed, 2 * fam + 3);
    sibling += distance(a, b);
    stranger += distance(a, c);
    EXPECT_GT(distance(a, b), 0.0);
  }
  EXPECT_LT(sibling, stranger);
}

TEST(Synth, ImagesVaryWithinAnIdentity) {
  const auto t = identityTraits(1, 0);
  const cv::Mat a = renderFace(t, imageNuisance(1, 0, 0)),
                b = renderFace(t, imageNuisance(1, 0, 1));
  EXPECT_EQ(a.size(), cv::Size(112, 112));
  EXPECT_GT(distance(a, b), 100.0);
}

TEST(Synth, RecordIOOutputIsAnInsightfaceSet) {
  SynthOptions o;
  o.identities = 5;
  o.images_per_id = 4;
  o.pairs = 6;
  o.format = "recordio";
  const std::string d = ::testing::TempDir() + "/srec";
  generateSyntheticFaces(d, o);
  const auto ds = openTrainingSet(d);
  EXPECT_EQ(ds->kind(), "recordio");
  ASSERT_EQ(ds->size(), 20u);
  EXPECT_EQ(ds->numClasses(), 5);
  EXPECT_EQ(ds->label(7), 1);
  EXPECT_EQ(decodeFace(ds->encoded(19), ds->describe(19)).cols, 112);
  const auto pairs = readPairsBin(d + "/val.bin");
  EXPECT_EQ(pairs.pairs(), 6u);
  int same = 0;
  for (auto s : pairs.issame) same += s;
  EXPECT_EQ(same, 4);  // pairs p with p % 4 < 2 are genuine: 0, 1, 4, 5
}
