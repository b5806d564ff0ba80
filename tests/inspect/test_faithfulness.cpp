// CAM faithfulness: deletion / insertion curves against a direct computation, the blur baseline
// against a separable convolution, ROAD's removal masks against numpy.percentile's definition, the
// imputer's linear system by its residual, a network that looks only at one window (a CAM on the
// window is more faithful than its inverse by every metric), the pair-set driver and its errors,
// the pair CAM, and .npy files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include <unistd.h>

#include "msconv/data/pairs.h"
#include "msconv/data/synth.h"
#include "msconv/error.h"
#include "msconv/inspect/faithfulness.h"
#include "msconv/inspect/inspect.h"
#include "msconv/io/npy.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/tap.h"

using namespace msconv;
using namespace msconv::inspect;

// A named namespace: the unity build puts several test files in one translation unit.
namespace faithfulness_test {

std::string errorText(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

at::Tensor faceOf(int64_t identity, int64_t image) {
  return bgrToTensor(data::renderFace(data::identityTraits(11, identity),
                                      data::imageNuisance(11, identity, image), 112));
}

std::string pngOf(int64_t identity, int64_t image) {
  std::vector<uchar> buf;
  cv::imencode(".png",
               data::renderFace(data::identityTraits(11, identity),
                                data::imageNuisance(11, identity, image), 112),
               buf);
  return std::string(buf.begin(), buf.end());
}

}  // namespace faithfulness_test

using namespace faithfulness_test;

TEST(Faithfulness, CurvesEqualADirectComputation) {
  // A linear score s(x) = <w, x> on a 3 x 4 x 4 image: each curve point by hand.
  torch::manual_seed(1);
  const auto img = torch::rand({3, 4, 4}) * 2 - 1;
  const auto w = torch::randn({3, 4, 4}, torch::kDouble);
  const ScoreFunction score = [&](const at::Tensor& x) {
    return (x.to(torch::kDouble) * w.unsqueeze(0)).sum({1, 2, 3});
  };
  // Distinct CAM values in a scrambled order, and one tie (pixels 3 and 9).
  const std::vector<float> values = {0.3f,  0.9f, 0.1f, 0.5f, 0.7f,  0.0f, 0.8f,  0.2f,
                                     0.65f, 0.5f, 0.4f, 1.0f, 0.05f, 0.6f, 0.95f, 0.15f};
  cv::Mat cam(4, 4, CV_32F);
  for (int i = 0; i < 16; ++i) cam.at<float>(i / 4, i % 4) = values[i];
  std::vector<int> order(16);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return values[a] > values[b]; });
  ASSERT_LT(std::find(order.begin(), order.end(), 3), std::find(order.begin(), order.end(), 9));

  for (int steps : {4, 3}) {
    SCOPED_TRACE(steps);
    FaithfulnessOptions o;
    o.steps = steps;
    o.baseline = FaithfulnessOptions::Baseline::kMean;
    o.metrics = {FaithfulnessMetric::kDeletion, FaithfulnessMetric::kInsertion};
    o.batch = 2;  // several forward passes
    const auto f = measureFaithfulness(score, img, cam, o);
    const auto mean = img.mean({1, 2});
    std::vector<double> fraction, del, ins;
    for (int k = 0; k <= steps; ++k) {
      const int moved = static_cast<int>(std::lround(16.0 * k / steps));
      fraction.push_back(moved / 16.0);
      auto d = img.clone(), in = img.clone();
      for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 16; ++p) in[c][p / 4][p % 4] = mean[c];
      for (int i = 0; i < moved; ++i) {
        const int p = order[i];
        for (int c = 0; c < 3; ++c) {
          d[c][p / 4][p % 4] = mean[c];
          in[c][p / 4][p % 4] = img[c][p / 4][p % 4];
        }
      }
      del.push_back((d.to(torch::kDouble) * w).sum().item<double>());
      ins.push_back((in.to(torch::kDouble) * w).sum().item<double>());
    }
    ASSERT_EQ(f.deletion.fraction.size(), static_cast<size_t>(steps + 1));
    double auc_d = 0, auc_i = 0;
    for (int k = 0; k <= steps; ++k) {
      EXPECT_DOUBLE_EQ(f.deletion.fraction[k], fraction[k]);
      EXPECT_NEAR(f.deletion.score[k], del[k], 1e-5);
      EXPECT_NEAR(f.insertion.score[k], ins[k], 1e-5);
      if (k > 0) {
        auc_d += (fraction[k] - fraction[k - 1]) * (del[k] + del[k - 1]) / 2;
        auc_i += (fraction[k] - fraction[k - 1]) * (ins[k] + ins[k - 1]) / 2;
      }
    }
    EXPECT_NEAR(f.deletion.auc, auc_d, 1e-5);
    EXPECT_NEAR(f.insertion.auc, auc_i, 1e-5);
    EXPECT_NEAR(f.deletion.score.front(), f.target, 1e-9);  // nothing removed yet
    EXPECT_NEAR(f.insertion.score.back(), f.target, 1e-9);  // everything put back
    // Metrics not asked for are NaN.
    EXPECT_TRUE(std::isnan(f.drop));
    EXPECT_TRUE(std::isnan(f.road_combined));
    EXPECT_TRUE(f.road_most.empty());
  }
  EXPECT_DOUBLE_EQ(trapezoidArea({0, 0.5, 1}, {1, 0, 1}), 0.5);
}

TEST(Faithfulness, BlurBaselineIsASeparableGaussian) {
  // The whole image deleted: the score of the blurred image, here against a convolution by torch
  // with the same kernel (2 * ceil(3 sigma) + 1 taps) and reflected (OpenCV's reflect-101) border.
  torch::manual_seed(2);
  const auto img = torch::rand({3, 40, 36}) * 2 - 1;
  const double sigma = 5.0;
  const int radius = 15;
  auto k = torch::arange(-radius, radius + 1, torch::kDouble);
  k = torch::exp(-k * k / (2 * sigma * sigma));
  k = (k / k.sum()).to(torch::kFloat);
  auto x = torch::reflection_pad2d(img.unsqueeze(1), {radius, radius, radius, radius});
  x = torch::conv2d(x, k.view({1, 1, 1, -1}));
  x = torch::conv2d(x, k.view({1, 1, -1, 1}));
  const auto blurred = x.squeeze(1);
  const auto w = torch::randn({3, 40, 36});
  const ScoreFunction score = [&](const at::Tensor& t) { return (t * w).sum({1, 2, 3}); };
  FaithfulnessOptions o;
  o.steps = 2;
  o.blur_sigma = sigma;
  o.metrics = {FaithfulnessMetric::kDeletion, FaithfulnessMetric::kInsertion};
  cv::Mat cam(40, 36, CV_32F);
  cv::randu(cam, 0.f, 1.f);
  const auto f = measureFaithfulness(score, img, cam, o);
  EXPECT_NEAR(f.deletion.score.back(), (blurred * w).sum().item<double>(), 1e-3);
  EXPECT_NEAR(f.insertion.score.front(), (blurred * w).sum().item<double>(), 1e-3);
}

TEST(Faithfulness, RoadMasksFollowNumpyPercentile) {
  // CAM values i / 99 for i = 0 .. 99 (shuffled): numpy.percentile(cam, 80) lies between the 80th
  // and 81st values, so removing 20% most relevant first takes i >= 80, least relevant first i
  // < 20.
  std::vector<int> perm(100);
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937 rng(3);
  std::shuffle(perm.begin(), perm.end(), rng);
  cv::Mat cam(10, 10, CV_32F);
  for (int p = 0; p < 100; ++p) cam.at<float>(p / 10, p % 10) = perm[p] / 99.0f;
  const auto most = roadRemovalMask(cam, 0.2, true), least = roadRemovalMask(cam, 0.2, false);
  for (int p = 0; p < 100; ++p) {
    EXPECT_EQ(most.at<uint8_t>(p / 10, p % 10), perm[p] >= 80 ? 1 : 0) << p;
    EXPECT_EQ(least.at<uint8_t>(p / 10, p % 10), perm[p] < 20 ? 1 : 0) << p;
  }
  EXPECT_EQ(cv::countNonZero(roadRemovalMask(cam, 0.55, true)), 55);
  EXPECT_NE(errorText([&] { roadRemovalMask(cam, 1.0, true); }).find("(0, 1)"), std::string::npos);
}

TEST(Faithfulness, ImputerSolvesItsSystemAndKeepsTheRest) {
  torch::manual_seed(4);
  const int H = 20, W = 24;
  const auto img = torch::rand({3, H, W}) * 2 - 1;
  cv::Mat removed(H, W, CV_8U);
  cv::randu(removed, 0, 100);
  removed = removed < 40;                   // about 40% scattered
  removed(cv::Rect(0, 0, 9, 7)) = 255;      // a corner block
  removed(cv::Rect(12, 10, 12, 10)) = 255;  // a block on two borders
  removed /= 255;
  const auto out = noisyLinearImpute(img, removed, 0.0);
  const int dy[8] = {1, 0, -1, 1, 0, -1, 1, -1}, dx[8] = {1, 1, 1, -1, -1, -1, 0, 0};
  const double wt[8] = {1.0 / 12, 1.0 / 6, 1.0 / 12, 1.0 / 12, 1.0 / 6, 1.0 / 12, 1.0 / 6, 1.0 / 6};
  const auto o = out.accessor<float, 3>();
  const auto in = img.accessor<float, 3>();
  double worst = 0;
  int n_removed = 0;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      for (int c = 0; c < 3; ++c) {
        if (!removed.at<uint8_t>(y, x)) {
          ASSERT_EQ(o[c][y][x], in[c][y][x]);  // kept pixels untouched
          continue;
        }
        n_removed += c == 0;
        // The weighted mean of the in-image neighbours (removed ones at their solved values).
        double s = 0, sw = 0;
        for (int k = 0; k < 8; ++k) {
          const int yy = y + dy[k], xx = x + dx[k];
          if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
          s += wt[k] * o[c][yy][xx];
          sw += wt[k];
        }
        worst = std::max(worst, std::abs(o[c][y][x] - s / sw));
      }
  EXPECT_GT(n_removed, 150);
  EXPECT_LT(worst, 1e-5);
  // The noise: N(0, 0.01^2) on the removed pixels only, reproducible from the seed.
  const auto noisy = noisyLinearImpute(img, removed, 0.01, 7);
  EXPECT_TRUE(torch::equal(noisy, noisyLinearImpute(img, removed, 0.01, 7)));
  EXPECT_FALSE(torch::equal(noisy, noisyLinearImpute(img, removed, 0.01, 8)));
  const auto mask =
      torch::from_blob(removed.data, {1, H, W}, torch::kUInt8).to(torch::kBool).expand({3, H, W});
  const auto diff = (noisy - out).masked_select(mask);
  EXPECT_NEAR(diff.std().item<double>(), 0.01, 0.001);
  EXPECT_NEAR(diff.mean().item<double>(), 0.0, 0.002);
  EXPECT_TRUE(torch::equal(noisy.masked_select(~mask), img.masked_select(~mask)));
  // Nothing left to interpolate from: zeros (plus noise).
  const auto all = noisyLinearImpute(img, cv::Mat::ones(H, W, CV_8U), 0.0);
  EXPECT_EQ(all.abs().max().item<float>(), 0.0f);
}

TEST(Faithfulness, AWindowCamIsMoreFaithfulThanItsInverse) {
  // The network of GradCam.PeaksWhereTheOutputLooks: its embedding sees only input pixels
  // 48..63 x 80..95. The target: the cosine to the embedding of the image with its window slightly
  // perturbed (not to its own embedding, where the cosine's gradient vanishes).
  torch::manual_seed(5);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 8, 4).stride(4));
  const TappedForward f = [&](const at::Tensor& x, nn::Tap* tap) {
    const auto feat = torch::relu(conv->forward(x));
    if (tap) tap->put("feat", "out", feat);
    return feat.slice(2, 12, 16).slice(3, 20, 24).sum({2, 3});
  };
  auto img = torch::rand({3, 112, 112}) * 0.2 - 0.1;
  img.slice(1, 48, 64).slice(2, 80, 96).uniform_(-1, 1);
  auto other = img.clone();
  other.slice(1, 48, 64).slice(2, 80, 96).add_(torch::randn({3, 16, 16}) * 0.2);
  CamTarget t;
  t.kind = CamTarget::Kind::kCosine;
  {
    torch::NoGradGuard no_grad;
    t.reference = f(other.unsqueeze(0), nullptr)[0];
  }
  CamOptions co;
  co.method = CamMethod::kLayerCam;  // element-wise: zero where the gradient is
  co.layers = {"feat"};
  const cv::Mat cam = computeCams(f, img, t, co).cams[0];
  const cv::Mat inverse = 1.0f - cam;
  const ScoreFunction score = [&](const at::Tensor& x) { return t.score(f(x, nullptr)); };
  FaithfulnessOptions o;
  o.steps = 10;
  const auto a = measureFaithfulness(score, img, cam, o);
  const auto b = measureFaithfulness(score, img, inverse, o);
  // The window blurred costs `fall`; the window CAM pays it from the first step on, its inverse
  // only at the last: the areas differ by about 0.9 fall.
  const double fall = a.target - a.deletion.score.back();
  EXPECT_GT(fall, 0.01);
  EXPECT_LT(a.deletion.auc, b.deletion.auc - 0.5 * fall);
  EXPECT_GT(a.insertion.auc, b.insertion.auc + 0.5 * fall);
  ASSERT_EQ(a.road_most.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_LT(a.road_most[i], -1e-3);         // the window imputed: the score falls
    EXPECT_NEAR(a.road_least[i], 0.0, 1e-6);  // the rest imputed: nothing changes
    EXPECT_NEAR(b.road_most[i], 0.0, 1e-6);
    EXPECT_LT(b.road_least[i], -1e-3);
  }
  EXPECT_GT(a.road_combined, 0.0);
  EXPECT_LT(b.road_combined, 0.0);
  // Average drop and increase against their formulas, with the masked image scored directly.
  for (const auto* m : {&cam, &inverse}) {
    const auto& r = m == &cam ? a : b;
    const auto masked = img * torch::from_blob(m->data, {1, 112, 112}, torch::kFloat);
    const double after = score(masked.unsqueeze(0))[0].item<double>();
    EXPECT_NEAR(r.drop, 100 * std::max(0.0, r.target - after) / r.target, 1e-4);
    EXPECT_EQ(r.increase, after > r.target ? 1.0 : 0.0);
  }
}

TEST(Faithfulness, OnPairsOfATinyModelAndItsErrors) {
  data::PairSet set;
  set.path = "/tmp/faith-set.bin";
  // Pairs: genuine, impostor, genuine, genuine.
  const std::vector<std::pair<std::pair<int, int>, std::pair<int, int>>> pairs = {
      {{0, 0}, {0, 1}}, {{1, 0}, {2, 0}}, {{1, 1}, {1, 2}}, {{3, 0}, {3, 1}}};
  for (const auto& [x, y] : pairs) {
    set.images.push_back(pngOf(x.first, x.second));
    set.images.push_back(pngOf(y.first, y.second));
    set.issame.push_back(x.first == y.first);
  }
  torch::manual_seed(6);
  auto model = nn::makeBackbone("msnet-tiny", "msconv-official");
  CamOptions co;
  co.layers = {"stage3.0", "stage4.0"};
  FaithfulnessOptions o;
  o.steps = 2;
  o.road_percentiles = {0.5};
  o.batch = 4;
  const auto rows = faithfulnessOnPairs(*model, "tiny", set, 2, co, o);
  ASSERT_EQ(rows.size(), 3u);  // two layers and their mean
  EXPECT_EQ(rows[2].layer, "mean");
  // n = 2 of 3 genuine pairs: genuine pairs 0 and 1 (floor(i * 3 / 2)), i.e. pairs 0 and 2.
  model->eval();
  double want = 0;
  for (size_t p : {0, 2}) {
    torch::NoGradGuard no_grad;
    const auto e = model->forward(torch::stack(
        {bgrToTensor(data::renderFace(
             data::identityTraits(11, pairs[p].first.first),
             data::imageNuisance(11, pairs[p].first.first, pairs[p].first.second), 112)),
         bgrToTensor(data::renderFace(
             data::identityTraits(11, pairs[p].second.first),
             data::imageNuisance(11, pairs[p].second.first, pairs[p].second.second), 112))}));
    want += torch::cosine_similarity(e[0], e[1], 0).item<double>() / 2;
  }
  for (const auto& r : rows) {
    SCOPED_TRACE(r.layer);
    EXPECT_EQ(r.model, "tiny");
    EXPECT_EQ(r.method, "gradcam");
    EXPECT_EQ(r.pairs, 2);
    EXPECT_NEAR(r.target, want, 1e-4);
    for (double v :
         {r.deletion_auc, r.insertion_auc, r.road_most, r.road_least, r.road_combined, r.increase})
      EXPECT_TRUE(std::isfinite(v));
    EXPECT_NEAR(r.road_combined, (r.road_least - r.road_most) / 2, 1e-9);
    EXPECT_GE(r.increase, 0.0);
    EXPECT_LE(r.increase, 1.0);
  }
  // A subset of metrics, and stopping after the first pair.
  o.metrics = {FaithfulnessMetric::kDeletion};
  o.progress = [](int done, int total) {
    EXPECT_EQ(total, 3);
    return done < 1;
  };
  const auto part = faithfulnessOnPairs(*model, "tiny", set, 3, co, o);
  EXPECT_EQ(part[0].pairs, 1);
  EXPECT_TRUE(std::isfinite(part[0].deletion_auc));
  EXPECT_TRUE(std::isnan(part[0].insertion_auc));
  EXPECT_TRUE(std::isnan(part[0].road_combined));
  EXPECT_TRUE(std::isnan(part[0].drop));
  // The model is left in the mode it was in.
  model->train();
  o.progress = nullptr;
  faithfulnessOnPairs(*model, "tiny", set, 1, co, o);
  EXPECT_TRUE(model->is_training());

  // Errors name the file.
  const auto too_many = errorText([&] { faithfulnessOnPairs(*model, "tiny", set, 4, co, o); });
  EXPECT_NE(too_many.find("faith-set.bin"), std::string::npos) << too_many;
  EXPECT_NE(too_many.find("3 genuine pairs"), std::string::npos) << too_many;
  EXPECT_NE(
      errorText([&] { faithfulnessOnPairs(*model, "tiny", set, 0, co, o); }).find("faith-set.bin"),
      std::string::npos);
  EXPECT_NE(errorText([] { parseFaithfulnessMetrics("deletion,magic"); }).find("'magic'"),
            std::string::npos);
  EXPECT_NE(errorText([] { parseFaithfulnessMetrics(","); }).find("no faithfulness metric"),
            std::string::npos);
  EXPECT_EQ(parseFaithfulnessMetrics("road,drop,road").size(), 2u);
  EXPECT_NE(errorText([] { baselineFromName("noise"); }).find("'noise'"), std::string::npos);
  const ScoreFunction s = [](const at::Tensor& x) { return x.sum({1, 2, 3}); };
  EXPECT_NE(errorText([&] {
              measureFaithfulness(s, torch::zeros({3, 8, 8}), cv::Mat::zeros(7, 8, CV_32F));
            }).find("8x7"),
            std::string::npos);
}

TEST(PairCams, EachImageForItsCosineToTheOther) {
  torch::manual_seed(7);
  auto model = nn::makeBackbone("msnet-tiny", "skconv");
  const auto a = faceOf(0, 0), b = faceOf(0, 1);
  CamOptions o;
  o.method = CamMethod::kGradCamPlusPlus;
  const auto p = pairCams(*model, a, b, o);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto e = model->forward(torch::stack({a, b}));
  const double cosine = torch::cosine_similarity(e[0], e[1], 0).item<double>();
  EXPECT_NEAR(p.cosine, cosine, 1e-5);
  EXPECT_NEAR(p.a.target, cosine, 1e-5);
  EXPECT_NEAR(p.b.target, cosine, 1e-5);
  ASSERT_EQ(p.a.cams.size(), 4u);  // the last unit of each stage
  const auto want_a = computeCams(*model, a, cosineTarget(*model, b), o);
  const auto want_b = computeCams(*model, b, cosineTarget(*model, a), o);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_LT(cv::norm(p.a.cams[i], want_a.cams[i], cv::NORM_INF), 1e-6);
    EXPECT_LT(cv::norm(p.b.cams[i], want_b.cams[i], cv::NORM_INF), 1e-6);
  }
  // The two images' maps differ (different faces).
  EXPECT_GT(cv::norm(p.a.cams[3], p.b.cams[3], cv::NORM_INF), 1e-3);
}

TEST(Npy, RoundTripAndBadFiles) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("msconv-npy-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::vector<std::vector<int64_t>> shapes = {{112, 112}, {3, 5, 7}, {4}, {}, {0, 3}};
  for (const auto& shape : shapes) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 0.25f - 3.0f;
    const std::string path = (dir / "a.npy").string();
    io::writeNpy(path, v.data(), shape);
    const auto r = io::readNpy(path);
    EXPECT_EQ(r.shape, shape);
    EXPECT_EQ(r.data, v);
    // numpy's layout: the data starts on a multiple of 64 bytes.
    EXPECT_EQ((std::filesystem::file_size(path) - n * sizeof(float)) % 64, 0u);
  }
  auto write = [&](const std::string& name, const std::string& bytes) {
    const std::string p = (dir / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  };
  auto header = [](const std::string& dict) {
    std::string h = dict + "\n";
    std::string b = std::string("\x93NUMPY\x01\x00", 8);
    b += static_cast<char>(h.size());
    b += '\0';
    return b + h;
  };
  const auto f8 =
      write("f8.npy", header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }") +
                          std::string(8, '\0'));
  EXPECT_NE(errorText([&] { io::readNpy(f8); }).find("f8.npy"), std::string::npos);
  const auto short_data =
      write("short.npy", header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }") +
                             std::string(8, '\0'));
  EXPECT_NE(errorText([&] { io::readNpy(short_data); }).find("short.npy"), std::string::npos);
  const auto fortran =
      write("fortran.npy", header("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }") +
                               std::string(4, '\0'));
  EXPECT_NE(errorText([&] { io::readNpy(fortran); }).find("Fortran"), std::string::npos);
  const auto text = write("text.npy", "just text");
  EXPECT_NE(errorText([&] { io::readNpy(text); }).find("not a .npy"), std::string::npos);
  EXPECT_NE(errorText([&] { io::readNpy((dir / "missing.npy").string()); }).find("missing.npy"),
            std::string::npos);
  const float one = 1;
  EXPECT_NE(errorText([&] {
              io::writeNpy((dir / "no/such/dir/x.npy").string(), &one, {1});
            }).find("x.npy"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}
