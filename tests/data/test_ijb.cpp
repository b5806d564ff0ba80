#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <nlohmann/json.hpp>

#include "msconv/data/ijb.h"
#include "msconv/error.h"

using namespace msconv;
using namespace msconv::data;
namespace fs = std::filesystem;

namespace {
std::array<float, 10> transformPoints(const cv::Mat& M, const std::array<float, 10>& p) {
  std::array<float, 10> out{};
  for (int i = 0; i < 5; ++i) {
    out[2 * i] = static_cast<float>(M.at<double>(0, 0) * p[2 * i] +
                                    M.at<double>(0, 1) * p[2 * i + 1] + M.at<double>(0, 2));
    out[2 * i + 1] = static_cast<float>(M.at<double>(1, 0) * p[2 * i] +
                                        M.at<double>(1, 1) * p[2 * i + 1] + M.at<double>(1, 2));
  }
  return out;
}
}  // namespace

TEST(Ijb, AlignmentEqualsInsightfacePixelForPixel) {
  // tests/python/make_eval_fixtures.py aligned this crop as insightface's eval_ijbc.py does:
  // skimage's SimilarityTransform.estimate onto the 112 x 112 template, cv2.warpAffine, border 0.
  const char* env = std::getenv("MSCONV_EVAL_FIXTURES");
  const std::string dir = env ? env : MSCONV_EVAL_FIXTURES_DIR;
  std::ifstream f(dir + "/align.json");
  ASSERT_TRUE(f) << "fixtures missing: run through ctest (python_eval_fixtures)";
  const auto j = nlohmann::json::parse(f);
  std::array<float, 10> landmarks{};
  for (int i = 0; i < 10; ++i) {
    landmarks[i] = j["landmarks"][i].get<float>();
    EXPECT_EQ(arcfaceTemplate()[i], j["template"][i].get<float>()) << "template point " << i / 2;
  }
  const cv::Mat M = similarityTransform(landmarks, arcfaceTemplate());
  for (int i = 0; i < 6; ++i)
    // skimage estimates in float32 arithmetic: the same transform to 1e-4 of a pixel.
    EXPECT_NEAR(M.at<double>(i / 3, i % 3), j["matrix"][i].get<double>(), 1e-4) << "M " << i;
  const cv::Mat image = cv::imread(dir + "/align_image.png", cv::IMREAD_COLOR);
  const cv::Mat expected = cv::imread(dir + "/align_expected.png", cv::IMREAD_COLOR);
  ASSERT_FALSE(image.empty());
  ASSERT_EQ(expected.size(), cv::Size(112, 112));
  const cv::Mat aligned = alignFace(image, landmarks);
  ASSERT_EQ(aligned.size(), expected.size());
  cv::Mat diff;
  cv::absdiff(aligned, expected, diff);
  double worst = 0;
  cv::minMaxLoc(diff.reshape(1), nullptr, &worst);
  const int differing = cv::countNonZero(diff.reshape(1));
  std::cout << "alignment vs skimage + cv2: max |diff| " << worst << ", " << differing << " of "
            << diff.total() * 3 << " values differ\n";
  EXPECT_LE(worst, 1.0);
  EXPECT_LE(differing, static_cast<int>(diff.total() * 3 / 1000));
  // The old 96 x 112 template would sit 8 pixels off: the test tells the two apart.
  std::array<float, 10> narrow = arcfaceTemplate();
  for (int i = 0; i < 5; ++i) narrow[2 * i] -= 8.f;
  cv::Mat shifted;
  cv::warpAffine(image, shifted, similarityTransform(landmarks, narrow), cv::Size(112, 112),
                 cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  cv::absdiff(shifted, expected, diff);
  EXPECT_GT(cv::countNonZero(diff.reshape(1)), static_cast<int>(diff.total()));
}

TEST(Ijb, SimilarityTransformRecoversAKnownWarp) {
  cv::Mat M = cv::getRotationMatrix2D(cv::Point2f(40, 50), 23.0, 1.7);
  M.at<double>(0, 2) += 11;
  const auto src =
      transformPoints(M, arcfaceTemplate());  // landmarks as a detector would report them
  const cv::Mat back = similarityTransform(src, arcfaceTemplate());
  const auto onto = transformPoints(back, src);
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(onto[i], arcfaceTemplate()[i], 1e-3);
}

TEST(Ijb, AlignFaceMovesLandmarksOntoTheTemplate) {
  // Draw five dots where a rotated, scaled face would have them; align; find the dots.
  // Rotated by -15 degrees, scaled 2x about the template's centre, moved into a 250 x 250 image.
  cv::Mat M = cv::getRotationMatrix2D(cv::Point2f(48, 72), -15.0, 2.0);
  M.at<double>(0, 2) += 70;
  M.at<double>(1, 2) += 50;
  const auto lm = transformPoints(M, arcfaceTemplate());
  cv::Mat img(250, 250, CV_8UC3, cv::Scalar(0, 0, 0));
  for (int i = 0; i < 5; ++i)
    cv::circle(img, cv::Point(cvRound(lm[2 * i]), cvRound(lm[2 * i + 1])), 3,
               cv::Scalar(255, 255, 255), -1);
  const cv::Mat aligned = alignFace(img, lm);
  ASSERT_EQ(aligned.size(), cv::Size(112, 112));
  for (int i = 0; i < 5; ++i) {
    const auto px = aligned.at<cv::Vec3b>(cvRound(arcfaceTemplate()[2 * i + 1]),
                                          cvRound(arcfaceTemplate()[2 * i]));
    EXPECT_GT(px[0], 100) << "landmark " << i;
  }
}

TEST(Ijb, ReadsMetadataAndNamesBadLines) {
  const std::string root = ::testing::TempDir() + "/ijb";
  fs::create_directories(root + "/meta");
  fs::create_directories(root + "/loose_crop");
  std::ofstream(root + "/meta/ijbc_face_tid_mid.txt")
      << "1.jpg 1 10\n2.jpg 1 11\n3.jpg 2 12\n4.jpg 3 12\n";
  std::ofstream(root + "/meta/ijbc_template_pair_label.txt") << "1 2 0\n1 3 1\n";
  {
    std::ofstream f(root + "/meta/ijbc_name_5pts_score.txt");
    for (int i = 1; i <= 4; ++i) f << i << ".jpg 30 51 65 51 48 71 33 92 62 92 0.9" << i << "\n";
  }
  const IjbSet set = readIjb(root);
  EXPECT_EQ(set.name, "ijbc");
  EXPECT_EQ(set.faces.size(), 4u);
  EXPECT_EQ(set.templates(), 3u);
  EXPECT_EQ(set.medias(), 3u);
  ASSERT_EQ(set.pairs.size(), 2u);
  EXPECT_EQ(set.pairs[1].label, 1);
  EXPECT_FLOAT_EQ(set.faces[2].score, 0.93f);
  // A loose crop with its landmarks comes back aligned; a missing image is named.
  cv::Mat crop(150, 150, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::circle(crop, cv::Point(30, 51), 3, cv::Scalar(0, 0, 255), -1);  // red dot at landmark 1
  cv::imwrite(root + "/loose_crop/1.jpg", crop);
  const cv::Mat face = loadAlignedFace(set, 0);
  EXPECT_EQ(face.size(), cv::Size(112, 112));
  // The dot lands on the template's first point, red in RGB order.
  EXPECT_GT(face.at<cv::Vec3b>(cvRound(arcfaceTemplate()[1]), cvRound(arcfaceTemplate()[0]))[0],
            100);
  try {
    loadAlignedFace(set, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("loose_crop/2.jpg"), std::string::npos) << e.what();
  }
  std::ofstream(root + "/meta/ijbc_template_pair_label.txt") << "1 2 0\n1 9 1\n";
  try {
    readIjb(root, "ijbc");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ijbc_template_pair_label.txt:2: template 9 has no faces"),
              std::string::npos)
        << e.what();
  }
  std::ofstream(root + "/meta/ijbc_template_pair_label.txt") << "1 2 0\n";
  std::ofstream(root + "/meta/ijbc_name_5pts_score.txt")
      << "1.jpg 30 51 65 51 48 71 33 92 62 92 0.9\n";
  EXPECT_THROW(readIjb(root), Error);  // faces 2..4 lack landmarks
}
