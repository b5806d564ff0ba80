// Inspection: Grad-CAM equals a hand computation; a network whose output depends on one region
// gets CAMs that peak there; EigenCAM is the first principal component's projection; the overlay
// is the blend formula; both figures match their golden images.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <cstdlib>

#include "msconv/data/synth.h"
#include "msconv/error.h"
#include "msconv/inspect/inspect.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/tap.h"
#include "msconv/viz/figure.h"

using namespace msconv;
using namespace msconv::inspect;

namespace {

at::Tensor syntheticFace(int64_t identity, int64_t image) {
  return bgrToTensor(data::renderFace(data::identityTraits(5, identity),
                                      data::imageNuisance(5, identity, image), 112));
}

void expectGolden(const cv::Mat& image, const std::string& name) {
  const std::string ref = std::string(MSCONV_GOLDEN_DIR) + "/" + name;
  if (std::getenv("MSCONV_UPDATE_GOLDEN")) {
    viz::writePng(ref, image);
    GTEST_SKIP() << "wrote " << ref;
  }
  std::string why;
  EXPECT_TRUE(viz::matchesGolden(
      image, ref, 2.0, 0.01, std::string(MSCONV_GOLDEN_DIR) + "/" + name + ".candidate.png", &why))
      << why;
}

}  // namespace

TEST(GradCam, EqualsAHandComputation) {
  torch::manual_seed(1);
  const auto A = torch::randn({1, 3, 2, 2}, torch::kFloat64);
  const auto G = torch::randn({1, 3, 2, 2}, torch::kFloat64);
  const auto cam = camFromGradients(CamMethod::kGradCam, A, G);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 2; ++x) {
      double want = 0;
      for (int c = 0; c < 3; ++c) {
        double w = 0;
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j) w += G[0][c][i][j].item<double>() / 4;
        want += w * A[0][c][y][x].item<double>();
      }
      EXPECT_NEAR(cam[y][x].item<double>(), want, 1e-12);
    }
  // HiResCAM and LayerCAM are element-wise.
  EXPECT_NEAR(camFromGradients(CamMethod::kHiResCam, A, G)[1][0].item<double>(),
              (G * A)[0].select(1, 1).select(1, 0).sum().item<double>(), 1e-12);
  EXPECT_NEAR(camFromGradients(CamMethod::kLayerCam, A, G)[0][1].item<double>(),
              (torch::relu(G) * A)[0].select(1, 0).select(1, 1).sum().item<double>(), 1e-12);
}

TEST(GradCam, WholePipelineOnABackboneEqualsManualGradients) {
  torch::manual_seed(2);
  auto model = nn::makeBackbone("msnet-tiny", "msconv-official");
  model->eval();
  const auto img = syntheticFace(0, 0);
  CamTarget t;  // embedding norm
  CamOptions o;
  o.layers = {"stage2.0"};
  const auto r = computeCams(*model, img, t, o);
  nn::Tap tap({"stage2.0"});
  const auto e = model->forward(img.unsqueeze(0), &tap);
  const auto A = tap.get("stage2.0", "out");
  const auto G = torch::autograd::grad({e.norm(2, 1).sum()}, {A})[0];
  auto raw = torch::relu((G.mean({2, 3}, true) * A).sum(1)[0]).detach();
  raw = (raw - raw.min()) / (raw.max() - raw.min() + 1e-7);
  cv::Mat want(static_cast<int>(raw.size(0)), static_cast<int>(raw.size(1)), CV_32F,
               raw.contiguous().data_ptr<float>());
  cv::resize(want.clone(), want, {112, 112}, 0, 0, cv::INTER_LINEAR);
  EXPECT_LT(cv::norm(r.cams[0], want, cv::NORM_INF), 1e-4);
  EXPECT_NEAR(r.target, e.norm().item<double>(), 1e-4);
}

TEST(GradCam, PeaksWhereTheOutputLooks) {
  // A network that sees only rows 12..15, columns 20..23 of its 28 x 28 feature map (input pixels
  // 48..63 x 80..95): every method's CAM peaks inside that window.
  torch::manual_seed(3);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 8, 4).stride(4));
  const TappedForward f = [&](const at::Tensor& x, nn::Tap* tap) {
    const auto feat = torch::relu(conv->forward(x));
    if (tap) tap->put("feat", "out", feat);
    return feat.slice(2, 12, 16).slice(3, 20, 24).sum({2, 3});  // N x 8 "embedding"
  };
  auto img = torch::rand({3, 112, 112}) * 0.2 - 0.1;
  img.slice(1, 48, 64).slice(2, 80, 96).uniform_(-1, 1);  // something to see in the window
  for (auto m : {CamMethod::kGradCam, CamMethod::kGradCamPlusPlus, CamMethod::kXGradCam,
                 CamMethod::kHiResCam, CamMethod::kLayerCam, CamMethod::kScoreCam}) {
    SCOPED_TRACE(camMethodName(m));
    CamOptions o;
    o.method = m;
    o.layers = {"feat"};
    const auto r = computeCams(f, img, CamTarget{}, o);
    cv::Point peak;
    cv::minMaxLoc(r.cams[0], nullptr, nullptr, nullptr, &peak);
    EXPECT_GE(peak.y, 44);
    EXPECT_LT(peak.y, 68);
    EXPECT_GE(peak.x, 76);
    EXPECT_LT(peak.x, 100);
  }
}

TEST(GradCam, EigenCamIsTheFirstPrincipalComponentProjection) {
  torch::manual_seed(4);
  const auto A = torch::randn({1, 6, 5, 4}, torch::kFloat64);
  const auto cam = camFromGradients(CamMethod::kEigenCam, A, torch::Tensor());
  // Independently: the top eigenvector of the centred positions' scatter matrix.
  auto r = A[0].reshape({6, 20}).t();
  r = r - r.mean(0, true);
  const auto eig = torch::linalg_eigh(r.t().matmul(r));
  auto v = std::get<1>(eig).select(1, 5);  // eigenvalues ascending
  // The sign: the component's channel weights sum to a positive value. (The projection of
  // centred data sums to zero, so a sign taken from it is rounding noise: it flipped with the
  // BLAS thread count.)
  if (v.sum().item<double>() < 0) v = -v;
  const auto want = r.matmul(v).reshape({5, 4});
  EXPECT_LT((cam - want).abs().max().item<double>(), 1e-9);
  EXPECT_NEAR(want.sum().item<double>(), 0.0, 1e-9);
  // The map correlates positively with the channels' mean activation.
  const auto mean_map = A[0].mean(0);
  EXPECT_GT(((mean_map - mean_map.mean()) * cam).sum().item<double>(), 0.0);
}

TEST(Viz, OverlayIsTheBlendFormula) {
  cv::Mat img(8, 8, CV_8UC3), cam(8, 8, CV_32F);
  cv::randu(img, 0, 255);
  cv::randu(cam, 0.f, 1.f);
  for (double w : {0.5, 0.3}) {
    const cv::Mat out = viz::overlay(img, cam, viz::Colormap::kJet, w);
    const cv::Mat heat = viz::applyColormap(cam, viz::Colormap::kJet);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x)
        for (int c = 0; c < 3; ++c) {
          const double want =
              (1 - w) * heat.at<cv::Vec3b>(y, x)[c] + w * img.at<cv::Vec3b>(y, x)[c];
          EXPECT_NEAR(out.at<cv::Vec3b>(y, x)[c], want, 0.51);
        }
  }
  EXPECT_THROW(viz::colormapFromName("rainbow"), Error);
}

TEST(Inspect, BranchMapsOfEachOperatorAndBadLayers) {
  torch::manual_seed(5);
  const auto img = syntheticFace(1, 0);
  for (const std::string op : {"msconv-official", "skconv", "scconv"}) {
    SCOPED_TRACE(op);
    auto model = nn::makeBackbone("msnet-tiny", op);
    const auto b = captureBranchMaps(*model, img, "", 5);
    EXPECT_EQ(b.layer, "stage1.0.op");
    EXPECT_EQ(b.channels.size(), 5u);
    EXPECT_EQ(b.rows.back(), "out");
    if (op != "scconv") {
      ASSERT_EQ(b.rows.size(), 6u);
      EXPECT_TRUE(torch::allclose(b.maps[3], b.maps[0] * b.maps[1]));  // multiply row
      EXPECT_TRUE(torch::allclose(b.maps[4], b.maps[0] - b.maps[1]));  // subtract row
      // Channels strongest first.
      const auto e = (b.maps[0].pow(2) + b.maps[1].pow(2)).mean({1, 2});
      EXPECT_GE(e[b.channels[0]].item<double>(), e[b.channels[4]].item<double>());
    }
  }
  // The Table 7 peers show their parts, and Grad-CAM runs on their frames.
  const std::vector<std::pair<std::string, std::vector<std::string>>> peers = {
      {"ghost", {"intrinsic|cheap", "out"}},
      {"ghostv2", {"intrinsic|cheap", "attention", "out"}},
      {"pconv", {"convolved|untouched", "out"}},
      {"star", {"branch1", "branch2", "star"}}};
  for (const auto& [op, rows] : peers) {
    SCOPED_TRACE(op);
    auto m = nn::makeBackbone("msnet-tiny", op);
    const auto b = captureBranchMaps(*m, img, "", 3);
    EXPECT_EQ(b.rows, rows);
    EXPECT_EQ(b.channels.size(), 3u);
    for (const auto& map : b.maps) EXPECT_GT(map.size(0), b.channels[0]);
    const auto cams = computeCams(*m, img, CamTarget{}, CamOptions{});
    EXPECT_EQ(cams.cams.size(), 4u);
  }
  auto model = nn::makeBackbone("msnet-tiny", "msconv-official");
  try {
    captureBranchMaps(*model, img, "stage9.0.op");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stage9.0.op"), std::string::npos);
  }
  EXPECT_THROW(computeCams(*model, img, CamTarget{}, CamOptions{CamMethod::kGradCam, {"nope"}}),
               Error);
}

TEST(Inspect, NarrowColumnsWrapTheGateValueInsteadOfCuttingIt) {
  // Eight channels of a stage-4 layer over 64-pixel tiles (the workbench's smallest): the label
  // "ch 192 c=0.53" is wider than a tile.
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  const auto lines = viz::wrapLabel("ch 192 c=0.53", 64, font, 0.4);
  ASSERT_EQ(lines, (std::vector<std::string>{"ch 192", "c=0.53"}));
  for (const auto& l : lines) {
    int base = 0;
    EXPECT_LE(cv::getTextSize(l, font, 0.4, 1, &base).width, 64) << l;
  }
  EXPECT_EQ(viz::wrapLabel("ch 5 c=0.10", 200, font, 0.4),
            (std::vector<std::string>{"ch 5 c=0.10"}));
  // Only a single word wider than the tile is cut.
  const auto cut = viz::wrapLabel("stage4.2.op.gate.fc", 40, font, 0.4);
  ASSERT_EQ(cut.size(), 1u);
  EXPECT_EQ(cut[0].back(), '~');
  // The header grows by a line where a label wraps, and the tiles move down with it.
  viz::Grid g;
  g.tile = 64;
  g.cells = {std::vector<cv::Mat>(8, cv::Mat(8, 8, CV_8UC3, cv::Scalar(0, 0, 255)))};
  g.col_labels.assign(8, "ch 1");
  const int one_line = viz::renderGrid(g).rows;
  g.col_labels[3] = "ch 192 c=0.53";
  EXPECT_EQ(viz::renderGrid(g).rows, one_line + 14);
}

TEST(Inspect, GoldenFeatureMapFigure) {
  torch::manual_seed(6);
  auto model = nn::makeBackbone("msnet-tiny", "msconv-official");
  const auto b = captureBranchMaps(*model, syntheticFace(2, 1), "stage1.0.op", 5);
  expectGolden(featureMapFigure(b), "featuremaps_msnet_tiny.png");
}

TEST(Inspect, GoldenGradCamFigure) {
  const auto img = syntheticFace(3, 2);
  std::vector<CamRow> rows;
  for (const std::string op : {"msconv-official", "skconv", "scconv"}) {
    torch::manual_seed(7);
    auto model = nn::makeBackbone("msnet-tiny", op);
    CamTarget t;  // the embedding's norm: an untrained network has no identities yet
    rows.push_back({op, computeCams(*model, img, t, CamOptions{})});
  }
  expectGolden(camFigure(tensorToBgr(img), rows, viz::Colormap::kJet, 0.5, 112,
                         "gradcam, target: embedding norm (untrained msnet-tiny, seed 7)"),
               "gradcam_msnet_tiny.png");
}

TEST(Inspect, TargetSpecsParseAndRejectClearly) {
  using K = msconv::inspect::CamTarget::Kind;
  EXPECT_EQ(msconv::inspect::parseTargetSpec("norm").kind, K::kNorm);
  EXPECT_EQ(msconv::inspect::parseTargetSpec("cosine").kind, K::kCosine);
  const auto id = msconv::inspect::parseTargetSpec("identity:3");
  EXPECT_EQ(id.kind, K::kIdentity);
  EXPECT_EQ(id.identity, 3);
  for (const char* bad : {"identity:", "identity:x", "identity:-1", "identity:2b", "logit"}) {
    try {
      msconv::inspect::parseTargetSpec(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const msconv::Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  // A cosine target without a reference, and an identity target of a model-only checkpoint.
  auto model = msconv::nn::makeBackbone("msnet-tiny", "msconv-official");
  EXPECT_THROW(
      msconv::inspect::makeCamTarget(msconv::inspect::parseTargetSpec("cosine"), *model, "x.ckpt"),
      msconv::Error);
  const auto norm = msconv::inspect::makeCamTarget({}, *model, "unused.ckpt");
  EXPECT_EQ(norm.kind, K::kNorm);
}
