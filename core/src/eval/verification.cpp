#include "msconv/eval/verification.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "msconv/data/decode.h"
#include "msconv/data/image.h"
#include "msconv/error.h"
#include "msconv/nn/backbone.h"

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

}  // namespace

std::vector<std::pair<double, double>> tarAtFar(const std::vector<double>& genuine,
                                                std::vector<double> impostor) {
  std::vector<std::pair<double, double>> out;
  if (genuine.empty() || impostor.empty()) return out;
  std::sort(impostor.begin(), impostor.end(), std::greater<double>());
  const double n = static_cast<double>(impostor.size());
  for (double far = 1e-1; far * n >= 1.0 - 1e-9; far /= 10) {
    // At most k impostors may score above the threshold: the threshold is the (k+1)-th highest.
    const size_t k = static_cast<size_t>(std::floor(far * n + 1e-9));
    const double threshold = k < impostor.size() ? impostor[k] : -1e300;
    int64_t accepted = 0;
    for (double g : genuine) accepted += g > threshold;
    out.emplace_back(far, static_cast<double>(accepted) / genuine.size());
  }
  return out;
}

VerificationResult foldAccuracy(const at::Tensor& first, const at::Tensor& second,
                                const std::vector<uint8_t>& issame, int folds) {
  const int64_t n = first.size(0);
  if (second.size(0) != n || static_cast<int64_t>(issame.size()) != n)
    throw Error("verification: " + std::to_string(n) + " and " + std::to_string(second.size(0)) +
                " embeddings for " + std::to_string(issame.size()) + " pairs");
  if (n < folds) throw Error("verification: needs at least " + std::to_string(folds) + " pairs");
  const auto d = (first - second).pow(2).sum(1).to(torch::kFloat64).contiguous();
  std::vector<double> dist(d.data_ptr<double>(), d.data_ptr<double>() + n);
  std::vector<double> thresholds;
  for (int i = 0; i < 400; ++i) thresholds.push_back(i * 0.01);
  // KFold(shuffle=False): the first n % k folds hold one extra pair.
  std::vector<double> fold_acc;
  int64_t start = 0;
  for (int f = 0; f < folds; ++f) {
    const int64_t size = n / folds + (f < n % folds ? 1 : 0);
    std::vector<int64_t> train, test;
    for (int64_t i = 0; i < n; ++i) (i >= start && i < start + size ? test : train).push_back(i);
    start += size;
    const auto acc = accuracies(dist, issame, train, thresholds);
    const size_t best = std::max_element(acc.begin(), acc.end()) - acc.begin();  // first maximum
    fold_acc.push_back(accuracies(dist, issame, test, {thresholds[best]})[0]);
  }
  VerificationResult r;
  r.pairs = n;
  for (double a : fold_acc) r.accuracy += a / folds;
  for (double a : fold_acc) r.accuracy_std += (a - r.accuracy) * (a - r.accuracy) / folds;
  r.accuracy_std = std::sqrt(r.accuracy_std);
  std::vector<int64_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = i;
  const auto acc = accuracies(dist, issame, all, thresholds);
  r.threshold = thresholds[std::max_element(acc.begin(), acc.end()) - acc.begin()];
  return r;
}

VerificationResult verifyPairs(nn::BackboneImpl& model, const data::PairSet& set, int batch,
                               at::Tensor* embeddings) {
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
      const cv::Mat rgb = data::decodeFace(set.images[i], set.path + " image " + std::to_string(i));
      x[i - b].copy_(data::faceTensor(rgb));
    }
    x = x.to(device);
    const auto e0 = model.forward(x), e1 = model.forward(x.flip({3}));
    norm_sum += e0.norm(2, 1).sum().item<double>() + e1.norm(2, 1).sum().item<double>();
    outs.push_back(torch::nn::functional::normalize(
        e0 + e1, torch::nn::functional::NormalizeFuncOptions().dim(1)));
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
                        .to(torch::kFloat64)
                        .contiguous();
  std::vector<double> genuine, impostor;
  for (int64_t i = 0; i < sims.size(0); ++i)
    (set.issame[i] ? genuine : impostor).push_back(sims.data_ptr<double>()[i]);
  r.tar_at_far = tarAtFar(genuine, impostor);
  if (embeddings) *embeddings = emb;
  return r;
}

}  // namespace msconv::eval
