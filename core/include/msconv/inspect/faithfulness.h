// How faithful a CAM is to what an embedding model decides: deletion and insertion curves, ROAD
// (remove and debias) and the average drop / increase in confidence, with the score a CAM
// explains (the cosine similarity to the other image of a pair) in place of a class score.
//
// Definitions (pytorch-grad-cam's metrics, jacobgil/pytorch-grad-cam pytorch_grad_cam/metrics/,
// with its conventions; deletion and insertion as RISE, Petsiuk et al. 2018, defines them):
// - deletion: the pixels ranked by CAM value, most relevant first (ties: lower row-major index
//   first), replaced by the baseline in `steps` equal steps (after step k, round(k * H * W /
//   steps) pixels); the target score after each step; area under score-vs-fraction by the
//   trapezoid rule over [0, 1]. Lower is more faithful.
// - insertion: the baseline image, the most relevant pixels put back first. Higher is better.
// - baselines: kBlur, the image blurred by a Gaussian of `blur_sigma` pixels (kernel 2 *
//   ceil(3 sigma) + 1, reflected border); kMean, each channel's mean over the image.
// - ROAD: for a fraction f removed, pytorch-grad-cam's percentile p = 100 (1 - f): most relevant
//   first removes the pixels whose CAM is not below numpy.percentile(cam, p) (linear
//   interpolation), least relevant first those whose 1 - CAM is not below numpy.percentile(1 -
//   cam, p). Pixels tied at the threshold are all removed, as in pytorch-grad-cam (most relevant
//   first on a CAM that is 0 on 90% of the image removes all of it at any fraction of 0.1 or
//   more). The removed pixels are filled by the noisy linear imputer (each removed pixel the
//   weighted mean of its in-image neighbours, 1/6 direct and 1/12 diagonal, removed neighbours
//   being unknowns of the same sparse system, solved here exactly by a Cholesky factorisation;
//   then N(0, 0.01^2) noise added to the filled pixels). Each percentile's value is the score
//   change s' - s (pytorch-grad-cam's return_diff); combined: the mean over percentiles of (least -
//   most) / 2 (its ROADCombined). Most relevant first: lower is better; combined: higher is better.
// - average drop: 100 * max(0, s - s') / s with s' the score of image * CAM (the normalised image
//   multiplied by the map, pytorch-grad-cam's multiply_tensor_with_cam), in percent, as
//   Chattopadhay et al. (Grad-CAM++) define it (pytorch-grad-cam's DropInConfidence returns the
//   unnormalised max(0, s - s')); undefined (NaN) when s <= 0. Increase: 1 when s' > s, else 0.
// Metrics not measured are NaN.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

#include "msconv/inspect/inspect.h"

namespace msconv::data {
struct PairSet;
}

namespace msconv::inspect {

enum class FaithfulnessMetric { kDeletion, kInsertion, kRoad, kDrop };  // kDrop: and increase
// "deletion,insertion,road,drop" -> metrics. Throws msconv::Error naming an unknown one.
std::vector<FaithfulnessMetric> parseFaithfulnessMetrics(const std::string& list);
const char* faithfulnessMetricName(FaithfulnessMetric m);

struct FaithfulnessOptions {
  std::vector<FaithfulnessMetric> metrics;  // empty: all four
  int steps = 20;                           // deletion / insertion steps
  enum class Baseline { kBlur, kMean } baseline = Baseline::kBlur;
  double blur_sigma = 5.0;                                      // kBlur: Gaussian sigma in pixels
  std::vector<double> road_percentiles = {0.2, 0.4, 0.6, 0.8};  // fractions removed, in (0, 1)
  double road_noise = 0.01;                                     // the imputer's noise (std)
  uint64_t seed = 0;                                            // ROAD's imputation noise
  int batch = 32;                                               // images per forward pass
  // faithfulnessOnPairs: called after each pair with (pairs done, pairs in all); returning false
  // stops early, and the rows then hold the means over the pairs done.
  std::function<bool(int done, int total)> progress;
};
// "blur" or "mean"; throws msconv::Error naming the text.
FaithfulnessOptions::Baseline baselineFromName(const std::string& name);

struct FaithfulnessCurve {
  std::vector<double> fraction, score;  // steps + 1 points, fraction 0 .. 1
  double auc = 0;
};

struct Faithfulness {
  double target = 0;  // the score of the unmodified image
  FaithfulnessCurve deletion, insertion;
  std::vector<double> road_most, road_least;  // score change at each of road_percentiles
  double road_combined = 0;
  double drop = 0;      // average drop, percent (NaN when target <= 0)
  double increase = 0;  // 1 when the masked image scores higher, else 0
};

// images N x 3 x H x W -> N target scores (no gradient needed).
using ScoreFunction = std::function<at::Tensor(const at::Tensor& images)>;

// One image (3 x H x W in [-1, 1]) and its CAM (H x W CV_32F in [0, 1]). Throws msconv::Error
// when the sizes differ or an option is out of range.
Faithfulness measureFaithfulness(const ScoreFunction& score, const at::Tensor& image,
                                 const cv::Mat& cam, const FaithfulnessOptions& options = {});

// The trapezoid rule's area under (x, y).
double trapezoidArea(const std::vector<double>& x, const std::vector<double>& y);

// ROAD's pixels to remove for fraction `fraction` (see above): H x W CV_8U, 1 = removed.
cv::Mat roadRemovalMask(const cv::Mat& cam, double fraction, bool most_relevant_first);

// pytorch-grad-cam's NoisyLinearImputer: `image` 3 x H x W, `removed` H x W CV_8U (non-zero =
// removed). Kept pixels are returned unchanged; removed ones solve the neighbour-mean system
// (exactly: a Cholesky factorisation in the matrix's envelope, in double) plus N(0, noise^2) noise.
// When every pixel is removed there is nothing to interpolate from: they become 0 (the normalised
// images' mid-grey) plus noise.
at::Tensor noisyLinearImpute(const at::Tensor& image, const cv::Mat& removed, double noise = 0.01,
                             uint64_t seed = 0);

// Means over the pairs of one model, layer and CAM method; NaN for metrics not measured.
struct FaithfulnessRow {
  std::string model, layer, method;  // layer "mean": the layers' average (CamResult::average)
  int pairs = 0;
  double target = 0;  // mean score of the unmodified images
  double deletion_auc = 0, insertion_auc = 0;
  double road_most = 0, road_least = 0, road_combined = 0;  // means over the percentiles too
  double drop = 0, increase = 0;  // drop: over the pairs whose target is positive
};

// The indices of `set`'s genuine pairs, after checking that `n` of them can be measured: throws
// msconv::Error naming the set's file when n < 1 or it has fewer than n genuine pairs. For
// commands to refuse a request before any work.
std::vector<size_t> faithfulnessPairs(const data::PairSet& set, int n);

// The first image of `n` genuine pairs of `set` (evenly spread over its genuine pairs: the
// i-th of n is genuine pair floor(i * G / n) of G), each explained for the cosine similarity to
// its pair's other image, per layer of `cam.layers` (empty: the last unit of each stage) and,
// when there are several, their mean. Throws msconv::Error naming the set's file when n < 1 or it
// has fewer than n genuine pairs.
std::vector<FaithfulnessRow> faithfulnessOnPairs(nn::BackboneImpl& model, const std::string& label,
                                                 const data::PairSet& set, int n,
                                                 const CamOptions& cam,
                                                 const FaithfulnessOptions& options = {});

}  // namespace msconv::inspect
