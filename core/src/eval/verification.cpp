#include "msconv/eval/verification.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "msconv/data/decode.h"
#include "msconv/data/image.h"
#include "msconv/error.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/inference.h"

namespace msconv::eval {
namespace {

// Accuracy of "same if dist < threshold" for each threshold over the selected pairs.
std::vector<double> accuracies(const std::vector<double>& dist, const std::vector<uint8_t>& same,
                               const std::vector<int64_t>& idx,
                               const std::vector<double>& thresholds) {
  std::vector<double> acc(thresholds.size(), 0.0);
  for (size_t t = 0; t < thresholds.size(); ++t) {
    int64_t correct = 0;
    for (int64_t i : idx) correct += (dist[i] < thresholds[t]) == (same[i] != 0);
    acc[t] = idx.empty() ? 0.0 : static_cast<double>(correct) / idx.size();
  }
  return acc;
}

// insightface's calculate_val_far: (VAL, FAR) of "same if dist < threshold" over `idx`.
std::pair<double, double> valFar(const std::vector<double>& dist, const std::vector<uint8_t>& same,
                                 const std::vector<int64_t>& idx, double threshold) {
  int64_t ta = 0, fa = 0, n_same = 0, n_diff = 0;
  for (int64_t i : idx) {
    const bool accept = dist[i] < threshold;
    if (same[i]) {
      ++n_same;
      ta += accept;
    } else {
      ++n_diff;
      fa += accept;
    }
  }
  return {n_same ? static_cast<double>(ta) / n_same : 0.0,
          n_diff ? static_cast<double>(fa) / n_diff : 0.0};
}

// scipy's interp1d(far, thresholds, kind='slinear')(target) for `far` non-decreasing: linear
// between the last point at or below the target and the next one.
double interpolateThreshold(const std::vector<double>& far, const std::vector<double>& thr,
                            double target) {
  const size_t u = std::upper_bound(far.begin(), far.end(), target) - far.begin();
  if (u == 0) return thr.front();
  if (u == far.size())  // target equals the largest FAR: where the curve first reaches it
    return thr[std::lower_bound(far.begin(), far.end(), target) - far.begin()];
  const size_t j = u - 1;
  return thr[j] + (thr[u] - thr[j]) * (target - far[j]) / (far[u] - far[j]);
}

}  // namespace

std::vector<double> supportedFars(int64_t impostors) {
  std::vector<double> fars;
  for (double far = 1e-1; far * impostors >= 1.0 - 1e-9; far /= 10) fars.push_back(far);
  return fars;
}

std::vector<std::pair<double, double>> tarAtFar(const std::vector<double>& genuine,
                                                std::vector<double> impostor) {
  if (genuine.empty() || impostor.empty()) return {};
  std::vector<float> scores(genuine.begin(), genuine.end());
  scores.insert(scores.end(), impostor.begin(), impostor.end());
  std::vector<uint8_t> labels(scores.size(), 0);
  std::fill(labels.begin(), labels.begin() + genuine.size(), 1);
  return computeRoc(scores.data(), labels.data(), static_cast<int64_t>(scores.size()),
                    supportedFars(static_cast<int64_t>(impostor.size())))
      .tar_at_far;
}

VerificationResult foldAccuracy(const at::Tensor& first, const at::Tensor& second,
                                const std::vector<uint8_t>& issame, int folds) {
  const int64_t n = first.size(0);
  if (second.size(0) != n || static_cast<int64_t>(issame.size()) != n)
    throw Error("verification: " + std::to_string(n) + " and " + std::to_string(second.size(0)) +
                " embeddings for " + std::to_string(issame.size()) + " pairs");
  if (folds < 1 || folds > 255)
    throw Error("verification: " + std::to_string(folds) + " folds (1 .. 255)");
  if (n < folds) throw Error("verification: needs at least " + std::to_string(folds) + " pairs");
  const auto d = (first - second).pow(2).sum(1).to(torch::kFloat64).contiguous();
  std::vector<double> dist(d.data_ptr<double>(), d.data_ptr<double>() + n);
  std::vector<double> thresholds;
  for (int i = 0; i < 400; ++i) thresholds.push_back(i * 0.01);
  std::vector<double> val_thresholds;
  for (int i = 0; i < 4000; ++i) val_thresholds.push_back(i * 0.001);
  // KFold(shuffle=False): the first n % k folds hold one extra pair.
  std::vector<double> fold_acc, fold_val, fold_far, fold_thr;
  std::vector<uint8_t> fold_of(n, 0);
  int64_t start = 0;
  for (int f = 0; f < folds; ++f) {
    const int64_t size = n / folds + (f < n % folds ? 1 : 0);
    std::vector<int64_t> train, test;
    for (int64_t i = 0; i < n; ++i) (i >= start && i < start + size ? test : train).push_back(i);
    for (int64_t i = start; i < start + size; ++i) fold_of[i] = static_cast<uint8_t>(f);
    start += size;
    const auto acc = accuracies(dist, issame, train, thresholds);
    const size_t best = std::max_element(acc.begin(), acc.end()) - acc.begin();  // first maximum
    fold_acc.push_back(accuracies(dist, issame, test, {thresholds[best]})[0]);
    fold_thr.push_back(thresholds[best]);
    // VAL at FAR = 1e-3: the threshold where the training folds' FAR reaches it.
    // FAR at each threshold = share of training impostors with distance below it.
    std::vector<double> impostor;
    for (int64_t i : train)
      if (!issame[i]) impostor.push_back(dist[i]);
    std::sort(impostor.begin(), impostor.end());
    std::vector<double> far_train(val_thresholds.size(), 0.0);
    for (size_t t = 0; t < val_thresholds.size() && !impostor.empty(); ++t)
      far_train[t] = static_cast<double>(
                         std::lower_bound(impostor.begin(), impostor.end(), val_thresholds[t]) -
                         impostor.begin()) /
                     impostor.size();
    const double target = 1e-3;
    const double thr = *std::max_element(far_train.begin(), far_train.end()) >= target
                           ? interpolateThreshold(far_train, val_thresholds, target)
                           : 0.0;
    const auto [val, far] = valFar(dist, issame, test, thr);
    fold_val.push_back(val);
    fold_far.push_back(far);
  }
  VerificationResult r;
  r.pairs = n;
  r.dist = dist;
  r.issame = issame;
  r.fold = std::move(fold_of);
  r.fold_thresholds = std::move(fold_thr);
  for (double a : fold_acc) r.accuracy += a / folds;
  for (double a : fold_acc) r.accuracy_std += (a - r.accuracy) * (a - r.accuracy) / folds;
  r.accuracy_std = std::sqrt(r.accuracy_std);
  for (int f = 0; f < folds; ++f) r.val += fold_val[f] / folds, r.far += fold_far[f] / folds;
  for (double v : fold_val) r.val_std += (v - r.val) * (v - r.val) / folds;
  r.val_std = std::sqrt(r.val_std);
  std::vector<int64_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = i;
  const auto acc = accuracies(dist, issame, all, thresholds);
  r.threshold = thresholds[std::max_element(acc.begin(), acc.end()) - acc.begin()];
  return r;
}

at::Tensor embedWithFlip(nn::BackboneImpl& model, const at::Tensor& x, double* norm_sum) {
  at::Tensor e0, e1;
  {
    // The inference form runs without autograd's bookkeeping, on channels-last input.
    c10::optional<c10::InferenceMode> inference;
    if (model.inferenceForm()) inference.emplace();
    e0 = model.forward(nn::inferenceInput(model, x));
    e1 = model.forward(nn::inferenceInput(model, x.flip({3})));
  }
  if (norm_sum)
    *norm_sum += e0.norm(2, 1).sum().item<double>() + e1.norm(2, 1).sum().item<double>();
  return e0 + e1;  // outside inference mode: an ordinary tensor the caller may change in place
}

std::vector<cv::Mat> decodePairImages(const data::PairSet& set) {
  std::vector<cv::Mat> out(set.images.size());
  for (size_t i = 0; i < set.images.size(); ++i)
    out[i] = data::decodeFace(set.images[i], set.path + " image " + std::to_string(i));
  return out;
}

VerificationResult verifyPairs(nn::BackboneImpl& model, const data::PairSet& set, int batch,
                               at::Tensor* embeddings, const std::vector<cv::Mat>* decoded,
                               const EvalProgress& progress) {
  if (decoded && decoded->size() != set.images.size())
    throw Error(set.path + ": " + std::to_string(decoded->size()) + " decoded images for " +
                std::to_string(set.images.size()));
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(set.images.size());
  std::vector<torch::Tensor> outs;
  double norm_sum = 0;
  const auto params = model.parameters();
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params[0].device();
  for (int64_t b = 0; b < n; b += batch) {
    const int64_t e = std::min(n, b + batch);
    auto x = torch::empty({e - b, 3, 112, 112});
    for (int64_t i = b; i < e; ++i) {
      if (decoded) {
        x[i - b].copy_(data::faceTensor((*decoded)[i]));
        continue;
      }
      const cv::Mat rgb = data::decodeFace(set.images[i], set.path + " image " + std::to_string(i));
      x[i - b].copy_(data::faceTensor(rgb));
    }
    x = x.to(device);
    outs.push_back(torch::nn::functional::normalize(
        embedWithFlip(model, x, &norm_sum), torch::nn::functional::NormalizeFuncOptions().dim(1)));
    if (progress && !progress(e, n)) {
      model.train(was_training);
      throw Cancelled(set.path + ": evaluation cancelled");
    }
  }
  model.train(was_training);
  const auto emb = torch::cat(outs).cpu();
  if (!torch::isfinite(emb).all().item<bool>())
    throw Error(set.path + ": the model produced NaN or infinite embeddings");
  const auto idx = torch::arange(0, n, 2);
  VerificationResult r =
      foldAccuracy(emb.index_select(0, idx), emb.index_select(0, idx + 1), set.issame);
  r.name = set.path;
  r.xnorm = norm_sum / (2.0 * n);
  const auto sims = (emb.index_select(0, idx) * emb.index_select(0, idx + 1))
                        .sum(1)
                        .to(torch::kFloat)
                        .contiguous();
  const int64_t impostors =
      static_cast<int64_t>(std::count(set.issame.begin(), set.issame.end(), 0));
  r.roc = computeRoc(sims.data_ptr<float>(), set.issame.data(), sims.size(0),
                     supportedFars(impostors), set.path);
  r.tar_at_far = r.roc.tar_at_far;
  r.score.assign(sims.data_ptr<float>(), sims.data_ptr<float>() + sims.size(0));
  if (embeddings) *embeddings = emb;
  return r;
}

}  // namespace msconv::eval
