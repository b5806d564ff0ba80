// The evaluator against insightface's own evaluation code run by python3 with numpy, scikit-learn
// and SciPy (tests/python/make_eval_fixtures.py): 10-fold accuracy and VAL@FAR on the same
// embeddings, the ROC / AUC / TAR@FAR of scores with ties, IJB template aggregation; and the
// tiled pair scorer against a double-precision dot product.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "msconv/error.h"
#include "msconv/eval/ijb.h"
#include "msconv/eval/roc.h"
#include "msconv/eval/verification.h"

using namespace msconv;
using namespace msconv::eval;

namespace {

std::string fixture(const std::string& name) {
  const char* env = std::getenv("MSCONV_EVAL_FIXTURES");
  return std::string(env ? env : MSCONV_EVAL_FIXTURES_DIR) + "/" + name;
}

template <typename T>
std::vector<T> readRaw(const std::string& name) {
  std::ifstream f(fixture(name), std::ios::binary);
  if (!f) throw std::runtime_error("missing fixture " + fixture(name));
  f.seekg(0, std::ios::end);
  std::vector<T> v(static_cast<size_t>(f.tellg()) / sizeof(T));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
  return v;
}

nlohmann::json readJson(const std::string& name) {
  std::ifstream f(fixture(name));
  return nlohmann::json::parse(f);
}

}  // namespace

TEST(EvalReference, TenFoldAccuracyAndValEqualInsightface) {
  const auto ref = readJson("verification.json");
  const int64_t n = ref["pairs"], d = ref["dim"];
  auto emb = readRaw<double>("verification.f64");
  const auto issame = readRaw<uint8_t>("verification_issame.u8");
  ASSERT_EQ(static_cast<int64_t>(emb.size()), 2 * n * d);
  const auto all = torch::from_blob(emb.data(), {2 * n, d}, torch::kFloat64);
  const auto idx = torch::arange(0, 2 * n, 2);
  const auto r = foldAccuracy(all.index_select(0, idx), all.index_select(0, idx + 1), issame);
  EXPECT_NEAR(r.accuracy, ref["accuracy"].get<double>(), 1e-12);
  EXPECT_NEAR(r.accuracy_std, ref["accuracy_std"].get<double>(), 1e-12);
  EXPECT_NEAR(r.val, ref["val"].get<double>(), 1e-12);
  EXPECT_NEAR(r.val_std, ref["val_std"].get<double>(), 1e-12);
  EXPECT_NEAR(r.far, ref["far"].get<double>(), 1e-12);
  EXPECT_LT(r.accuracy, 0.99);  // not a trivially separable set
}

TEST(EvalReference, RocAucAndTarAtFarEqualScikitLearn) {
  const auto ref = readJson("roc.json");
  const auto scores = readRaw<float>("roc.f32");
  const auto labels = readRaw<uint8_t>("roc.u8");
  ASSERT_EQ(scores.size(), labels.size());
  const Roc roc = computeRoc(scores.data(), labels.data(), static_cast<int64_t>(scores.size()));
  ASSERT_EQ(static_cast<int64_t>(roc.points.size()), ref["points"].get<int64_t>());
  EXPECT_NEAR(roc.auc, ref["auc"].get<double>(), 1e-12);
  for (size_t k = 0; k < ref["fpr_sample"].size(); ++k) {
    EXPECT_NEAR(roc.points[k * 97].far, ref["fpr_sample"][k].get<double>(), 1e-15);
    EXPECT_NEAR(roc.points[k * 97].tar, ref["tpr_sample"][k].get<double>(), 1e-15);
  }
  ASSERT_EQ(roc.tar_at_far.size(), ref["tars"].size());
  for (size_t i = 0; i < roc.tar_at_far.size(); ++i)
    EXPECT_DOUBLE_EQ(roc.tar_at_far[i].second, ref["tars"][i].get<double>()) << i;
  // Thinned for plotting: about 2,000 points, FAR rising, TAR never above the exact curve's.
  const auto thin = thinRoc(roc, 2000);
  EXPECT_EQ(thin.size(), 2000u);
  for (size_t i = 1; i < thin.size(); ++i) EXPECT_GE(thin[i].tar, thin[i - 1].tar);
}

TEST(EvalReference, IjbTemplatesEqualInsightfaceAggregation) {
  const auto meta = readJson("ijb_meta.json");
  auto feats = readRaw<double>("ijb_images.f64");
  auto expected = readRaw<double>("ijb_templates.f64");
  const int64_t d = meta["dim"];
  std::vector<data::IjbFace> faces;
  for (size_t i = 0; i < meta["template"].size(); ++i) {
    data::IjbFace f;
    f.image = std::to_string(i) + ".jpg";
    f.template_id = meta["template"][i];
    f.media_id = meta["media"][i];
    f.score = meta["score"][i];
    faces.push_back(f);
  }
  const auto images =
      torch::from_blob(feats.data(), {static_cast<int64_t>(faces.size()), d}, torch::kFloat64);
  const Templates t = aggregateTemplates(images, faces);
  ASSERT_EQ(t.ids.size(), meta["unique"].size());
  for (size_t i = 0; i < t.ids.size(); ++i) EXPECT_EQ(t.ids[i], meta["unique"][i].get<int64_t>());
  const auto ref =
      torch::from_blob(expected.data(), {static_cast<int64_t>(t.ids.size()), d}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(t.features.to(torch::kFloat64), ref, 1e-6, 1e-6));
  // A NaN feature names its image.
  auto bad = images.clone();
  bad[5][3] = std::nan("");
  try {
    aggregateTemplates(bad, faces);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("5.jpg"), std::string::npos) << e.what();
  }
}

TEST(EvalIjb, TiledScoresEqualDoubleDotProducts) {
  torch::manual_seed(4);
  for (const int64_t dim : {512, 37}) {
    const int64_t rows = 3000, n = 20000;
    const auto f = torch::nn::functional::normalize(
        torch::randn({rows, dim}), torch::nn::functional::NormalizeFuncOptions().dim(1));
    const auto a = torch::randint(0, rows, {n}, torch::kInt),
               b = torch::randint(0, rows, {n}, torch::kInt);
    std::vector<float> out(n);
    scorePairs(f.data_ptr<float>(), rows, dim, a.data_ptr<int32_t>(), b.data_ptr<int32_t>(), n,
               out.data());
    const auto fd = f.to(torch::kFloat64);
    const auto ref =
        (fd.index_select(0, a.to(torch::kLong)) * fd.index_select(0, b.to(torch::kLong))).sum(1);
    const auto got = torch::from_blob(out.data(), {n}, torch::kFloat).to(torch::kFloat64);
    EXPECT_LT((got - ref).abs().max().item<double>(), 2e-6) << "dim " << dim;
  }
  const float feat[4] = {1, 0, 0, 1};
  const int32_t a[1] = {0}, b[1] = {2};
  float out[1];
  EXPECT_THROW(scorePairs(feat, 2, 2, a, b, 1, out), Error);
}

TEST(EvalIjb, RocRefusesNaNAndOneClassNamingTheInput) {
  const float s[3] = {0.1f, std::nanf(""), 0.3f};
  const uint8_t l[3] = {1, 0, 0};
  try {
    computeRoc(s, l, 3, ijbFars(), "ijbc pairs");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ijbc pairs: score 1"), std::string::npos);
  }
  const float ok[2] = {0.1f, 0.2f};
  const uint8_t same[2] = {1, 1};
  EXPECT_THROW(computeRoc(ok, same, 2), Error);
}

TEST(EvalIjb, TiledScoringGivesTheRocOfPlainScores) {
  torch::manual_seed(9);
  const int64_t rows = 1500, dim = 512, n = 60000;
  Templates t;
  t.features = torch::nn::functional::normalize(
      torch::randn({rows, dim}), torch::nn::functional::NormalizeFuncOptions().dim(1));
  for (int64_t i = 0; i < rows; ++i) t.ids.push_back(100 + 3 * i);
  data::IjbSet set;
  set.name = "ijbx";
  const auto a = torch::randint(0, rows, {n}, torch::kInt),
             b = torch::randint(0, rows, {n}, torch::kInt);
  std::vector<uint8_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = (i % 37) == 0;
    set.pairs.push_back({t.ids[a[i].item<int>()], t.ids[b[i].item<int>()], labels[i]});
  }
  std::vector<float> scores(n);
  scorePairs(t.features.data_ptr<float>(), rows, dim, a.data_ptr<int32_t>(), b.data_ptr<int32_t>(),
             n, scores.data());
  const Roc want = computeRoc(scores.data(), labels.data(), n);
  const IjbResult got = scoreIjb(set, t);
  EXPECT_EQ(got.pairs, n);
  ASSERT_EQ(got.roc.points.size(), want.points.size());
  EXPECT_DOUBLE_EQ(got.roc.auc, want.auc);
  for (size_t i = 0; i < want.tar_at_far.size(); ++i)
    EXPECT_DOUBLE_EQ(got.roc.tar_at_far[i].second, want.tar_at_far[i].second);
  // A pair naming a template without features is named.
  set.pairs.push_back({100, 7, 0});
  try {
    scoreIjb(set, t);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pair " + std::to_string(n + 1) + ": template 7"),
              std::string::npos)
        << e.what();
  }
}
