// Inspection: what an operator's two branches carry (the paper's Fig. 6) and where a network looks
// (Grad-CAM family, the paper's Fig. 7), for embedding models, on the tap of every backbone.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

#include "msconv/viz/figure.h"

namespace msconv::nn {
class BackboneImpl;
class Tap;
}  // namespace msconv::nn

namespace msconv::inspect {

// ---- Feature maps ------------------------------------------------------------------------------

// One operator layer on one image. MSConv and SKConv: rows U1, U2, U1+U2, U1*U2, U1-U2 and the
// gate per channel; SCConv: its parts (sru, up, low, cru); Ghost: intrinsic|cheap (and GhostV2's
// attention); PConv: convolved|untouched; every operator: its output (StarNet: its two branches
// and their product instead, in its hidden channels). Maps are
// C x H x W float tensors; `channels` the top-k by activation energy (mean square of U1 and U2,
// or of the output where there are no branches), strongest first.
struct BranchMaps {
  std::string layer, op;
  std::vector<std::string> rows;  // row names, in figure order
  std::vector<at::Tensor> maps;   // one C x H x W tensor per row
  at::Tensor gate;                // C (MSConv's c, SKConv's a); undefined otherwise
  std::vector<int64_t> channels;  // top-k channel indices
};

// `layer` empty: the first operator layer (the paper shows the first MSConv of stage 1).
// Throws msconv::Error naming the layer when the model has no such operator layer.
BranchMaps captureBranchMaps(nn::BackboneImpl& model, const at::Tensor& image,
                             const std::string& layer = {}, int top_k = 5);

struct FeatureFigureOptions {
  bool shared_scale = false;  // one min-max over the whole row instead of per channel
  viz::Colormap colormap = viz::Colormap::kViridis;
  int tile = 96;
};
cv::Mat featureMapFigure(const BranchMaps& maps, const FeatureFigureOptions& options = {});

// ---- Grad-CAM family ---------------------------------------------------------------------------

enum class CamMethod {
  kGradCam,
  kGradCamPlusPlus,
  kXGradCam,
  kHiResCam,
  kLayerCam,
  kEigenCam,
  kScoreCam
};
CamMethod camMethodFromName(const std::string& name);  // gradcam, gradcam++, xgradcam, ...
const char* camMethodName(CamMethod m);

// What the explanation is of: the cosine similarity between the image's embedding and a
// reference embedding, a training identity's margin-head logit (s * cos(theta + m) from the
// head's centre `identity_weight`), or the embedding's norm.
struct CamTarget {
  enum class Kind { kCosine, kIdentity, kNorm } kind = Kind::kNorm;
  at::Tensor reference;        // D (kCosine)
  at::Tensor identity_weight;  // D (kIdentity)
  double scale = 64.0, margin = 0.5;
  at::Tensor score(const at::Tensor& embeddings) const;  // N x D -> N
};

// The cosine target towards `reference` (3 x H x W in [-1, 1]): its embedding by `model`
// (eval mode, no gradient).
CamTarget cosineTarget(nn::BackboneImpl& model, const at::Tensor& reference);

// A figure row's label for a checkpoint: its run folder's name (its file name for a loose
// checkpoint) and the operator.
std::string camRowLabel(const std::string& checkpoint, const std::string& op);

// A target as the CLI and the workbench name it: "cosine", "norm" or "identity:N". Throws
// msconv::Error naming the text.
struct TargetSpec {
  CamTarget::Kind kind = CamTarget::Kind::kNorm;
  int64_t identity = -1;
};
TargetSpec parseTargetSpec(const std::string& text);

// The target a spec names for one model: the cosine to `reference` (3 x H x W; required for
// cosine), the embedding norm, or the margin-head logit of identity N, whose centre is read from
// training checkpoint `checkpoint`. Throws msconv::Error naming the checkpoint or identity.
CamTarget makeCamTarget(const TargetSpec& spec, nn::BackboneImpl& model,
                        const std::string& checkpoint, const at::Tensor& reference = {});

struct CamOptions {
  CamMethod method = CamMethod::kGradCam;
  std::vector<std::string> layers;  // empty: the last unit of each stage
  bool flip_smooth = false;         // average with the CAM of the mirrored image, mirrored back
  int score_batch = 32;             // ScoreCAM's masked images per forward pass
};

// The maps are the arrays the figure overlays (and `gradcam --save-arrays` writes), computed as
// pytorch-grad-cam's BaseCAM does: the layer's raw map, ReLU, min-max to [0, 1] at the
// activations' resolution ((x - min) / (1e-7 + max - min), its scale_cam_image), then a bilinear
// resize to the input (cv::resize INTER_LINEAR, as its cv2.resize).
struct CamResult {
  std::vector<std::string> layers;
  std::vector<cv::Mat> cams;  // per layer, CV_32F in [0, 1], input size (H x W)
  double target = 0;          // the target's value on the image
  // The layers averaged, min-max rescaled to [0, 1] (pytorch-grad-cam's aggregate_multi_layers;
  // its eps 1e-7 aside).
  cv::Mat average() const;
};

// A forward function with taps: the generic form, so that any network can be explained.
using TappedForward = std::function<at::Tensor(const at::Tensor& images, nn::Tap* tap)>;

// image: 3 x H x W in [-1, 1]. Activations of each layer come from the tap key "out".
CamResult computeCams(const TappedForward& forward, const at::Tensor& image,
                      const CamTarget& target, const CamOptions& options);
CamResult computeCams(nn::BackboneImpl& model, const at::Tensor& image, const CamTarget& target,
                      CamOptions options);

// The failure browser's pair CAM: image A's CAMs for the cosine similarity of its embedding to
// image B's, and B's for its cosine to A's (both 3 x H x W in [-1, 1]); a.target == b.target ==
// the pair's cosine similarity. `options.layers` empty: the last unit of each stage.
struct PairCams {
  CamResult a, b;
  double cosine = 0;
};
PairCams pairCams(nn::BackboneImpl& model, const at::Tensor& image_a, const at::Tensor& image_b,
                  const CamOptions& options = {});

// The class-activation map of one layer from its activations A and gradients G (1 x C x h x w),
// before ReLU and scaling (EigenCAM ignores G; ScoreCAM is computed by computeCams).
at::Tensor camFromGradients(CamMethod method, const at::Tensor& activations,
                            const at::Tensor& gradients);

// The figure: rows = models, columns = layers (and the layers' average when several), every
// cell the overlay of the same image; `image_bgr` is the 8-bit input image.
struct CamRow {
  std::string label;
  CamResult result;
};
cv::Mat camFigure(const cv::Mat& image_bgr, const std::vector<CamRow>& rows,
                  viz::Colormap colormap = viz::Colormap::kJet, double image_weight = 0.5,
                  int tile = 112, const std::string& title = {});

// Helpers: the 8-bit BGR picture of a 3 x H x W tensor in [-1, 1], and back.
cv::Mat tensorToBgr(const at::Tensor& image);
at::Tensor bgrToTensor(const cv::Mat& bgr);

}  // namespace msconv::inspect
