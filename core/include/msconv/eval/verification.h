// Verification on pair sets (lfw.bin and friends, the synthetic val.bin) the way insightface
// computes it: embeddings of each image and its horizontal flip summed and L2-normalised, squared
// L2 distance, thresholds 0 .. 3.99 by 0.01, 10 folds without shuffling, best threshold chosen on
// the other nine folds, accuracy mean +- std over folds; VAL@FAR=1e-3 (per fold, the threshold
// where the training folds' FAR reaches 1e-3 by linear interpolation over thresholds 0 .. 3.999
// by 0.001); XNorm = mean norm of the raw embeddings. Also the ROC of the pairs' cosine scores.
#pragma once

#include <ATen/core/Tensor.h>
#include <opencv2/core/mat.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "msconv/data/pairs.h"
#include "msconv/eval/progress.h"
#include "msconv/eval/roc.h"

namespace msconv::nn {
class BackboneImpl;
}

namespace msconv::eval {

struct VerificationResult {
  std::string name;
  double accuracy = 0, accuracy_std = 0;  // fractions in [0, 1]
  double xnorm = 0;
  double val = 0, val_std = 0, far = 0;  // VAL@FAR=1e-3: mean, std and the FAR reached
  double threshold = 0;                  // best threshold on all pairs
  int64_t pairs = 0;
  std::vector<std::pair<double, double>> tar_at_far;  // (FAR, TAR) for the FARs the pairs support
  Roc roc;                                            // of the cosine scores (verifyPairs)
  // Per pair: the squared L2 distance the folds threshold (same when dist < threshold) and the
  // cosine score the ROC ranks (verifyPairs); a study's per-pair tests read them.
  std::vector<double> dist;
  std::vector<float> score;
  std::vector<uint8_t> issame;
  // The 10-fold protocol's decisions (foldAccuracy): each pair's test fold (insightface's
  // KFold(n_splits=10, shuffle=False): contiguous folds, the first n % 10 one pair larger) and,
  // per fold, the threshold chosen on the other nine folds. Pair i is "same" when
  // dist[i] < fold_thresholds[fold[i]]; the folds' mean error rate is 1 - accuracy.
  std::vector<uint8_t> fold;
  std::vector<double> fold_thresholds;
};

// TAR at each FAR of 1e-1, 1e-2, ... that the impostor count supports (FAR >= 1 / impostors),
// read off the exact ROC as computeRoc does. Scores: higher = more alike.
std::vector<std::pair<double, double>> tarAtFar(const std::vector<double>& genuine,
                                                std::vector<double> impostor);

// 10-fold accuracy from N x D embeddings of the first and second images (already normalised).
VerificationResult foldAccuracy(const at::Tensor& first, const at::Tensor& second,
                                const std::vector<uint8_t>& issame, int folds = 10);

// insightface's flip test on a batch (N x 3 x H x W, on the model's device): the embeddings of
// the images and of their mirror images, summed (not normalised). The raw embeddings' norms are
// added to *norm_sum when given (for XNorm).
at::Tensor embedWithFlip(nn::BackboneImpl& model, const at::Tensor& images,
                         double* norm_sum = nullptr);

// Embeds a pair set with the flip test (eval mode, no grad, batches of `batch`) and scores it.
// Returns also the 2N x D normalised embeddings when `embeddings` is given. `decoded`: the set's
// images decoded once before (decodePairImages), for a set verified again and again (training's
// validation); the numbers are the same as decoding them here.
// `progress` (when set) is called after each batch with the images embedded and the set's
// total; returning false stops the work: eval::Cancelled is thrown.
VerificationResult verifyPairs(nn::BackboneImpl& model, const data::PairSet& set, int batch = 64,
                               at::Tensor* embeddings = nullptr,
                               const std::vector<cv::Mat>* decoded = nullptr,
                               const EvalProgress& progress = {});
// Every image of the set decoded (112 x 112 RGB, 8 bits: 37.6 kB an image), as verifyPairs
// decodes them. Throws msconv::Error naming the set and the image.
std::vector<cv::Mat> decodePairImages(const data::PairSet& set);

}  // namespace msconv::eval
