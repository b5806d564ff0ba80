// IJB-B / IJB-C 1:1 verification as insightface's eval_ijbc.py computes it: per-image embeddings
// of the aligned face and its flip, summed; optionally normalised per image (insightface keeps
// the norm) and weighted by the detector score; averaged per media, summed per template,
// L2-normalised; cosine scores for every template pair; the exact ROC, TAR at FAR 1e-6 .. 1e-1
// and AUC.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "msconv/data/ijb.h"
#include "msconv/eval/progress.h"
#include "msconv/eval/roc.h"

namespace msconv::nn {
class BackboneImpl;
}

namespace msconv::eval {

struct TemplateOptions {
  bool normalise_images = false;  // insightface's use_norm_score=True keeps each image's norm
  bool detector_score = true;     // weight images by their detector score
};

struct Templates {
  at::Tensor features;            // T x D, float, rows L2-normalised
  std::vector<int64_t> ids;       // template id of each row, ascending
  int64_t row(int64_t id) const;  // -1 when absent
};

// images: N x D (embedding of image + embedding of its flip). Throws msconv::Error naming the
// image of a NaN feature and the template whose aggregate has zero norm.
Templates aggregateTemplates(const at::Tensor& images, const std::vector<data::IjbFace>& faces,
                             const TemplateOptions& options = {});

// out[i] = <features[a[i]], features[b[i]]> for n pairs over rows x dim float features. Pairs are
// processed in cache-sized tiles of templates, vectorised (AVX-512 / AVX2 where the CPU has them)
// and spread over LibTorch's intra-op threads. Throws msconv::Error for an index out of range.
void scorePairs(const float* features, int64_t rows, int64_t dim, const int32_t* a,
                const int32_t* b, int64_t n, float* out);

struct IjbResult {
  std::string name;
  int64_t faces = 0, templates = 0, pairs = 0;
  Roc roc;
  double embed_seconds = 0, score_seconds = 0;
  Templates features;  // evaluateIjb: the templates it scored (for per-pair scores, scorePairs)
};

// Scores every pair of `set` against `templates` and computes the ROC. Throws msconv::Error
// naming the pair whose template has no features.
IjbResult scoreIjb(const data::IjbSet& set, const Templates& templates);

// The whole protocol on a model: embeds every face (aligned, with flip), aggregates, scores.
// `progress` as verifyPairs takes it (faces embedded of the set's).
IjbResult evaluateIjb(nn::BackboneImpl& model, const data::IjbSet& set,
                      const TemplateOptions& options = {}, int batch = 64,
                      const EvalProgress& progress = {});

}  // namespace msconv::eval
