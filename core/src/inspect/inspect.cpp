#include "msconv/inspect/inspect.h"

#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "msconv/error.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/inference.h"
#include "msconv/nn/tap.h"
#include "msconv/workspace/training_checkpoint.h"

namespace msconv::inspect {
namespace {

cv::Mat toMat(const at::Tensor& map2d) {
  const auto t = map2d.detach().to(torch::kFloat).contiguous().cpu();
  return cv::Mat(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_32F,
                 const_cast<float*>(t.data_ptr<float>()))
      .clone();
}

// ReLU, min-max to [0, 1] (pytorch-grad-cam's scale_cam_image), bilinear resize to the input.
cv::Mat finishCam(const at::Tensor& raw, int height, int width) {
  cv::Mat cam = toMat(torch::relu(raw));
  double lo = 0, hi = 0;
  cv::minMaxLoc(cam, &lo, &hi);
  cam = (cam - lo) / (1e-7 + (hi - lo));
  cv::Mat out;
  cv::resize(cam, out, {width, height}, 0, 0, cv::INTER_LINEAR);
  return out;
}

std::string listOf(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

// ---- Feature maps ------------------------------------------------------------------------------

BranchMaps captureBranchMaps(nn::BackboneImpl& model, const at::Tensor& image,
                             const std::string& layer_in, int top_k) {
  // An ONNX model (no gradients, no known family): any tensor of its graph, by name.
  const bool onnx = !model.differentiable();
  const auto layers = onnx ? model.layerNames() : model.operatorLayers();
  if (layers.empty()) throw Error("featuremaps: the model has no layers to show");
  const std::string layer = layer_in.empty() ? layers.front() : layer_in;
  if (std::find(layers.begin(), layers.end(), layer) == layers.end())
    throw Error("featuremaps: no " + std::string(onnx ? "tensor" : "operator layer") + " '" +
                layer + "' (" + (onnx ? "tensors" : "layers") + ": " + listOf(layers) + ")");
  if (top_k < 1)
    throw Error("feature maps: the number of channels shown must be at least 1 (got " +
                std::to_string(top_k) + ")");
  const bool was_training = model.is_training();
  model.eval();
  nn::Tap tap({layer});
  {
    // The inference form (nn::prepareInference) runs channels-last; its taps are the training
    // graph's tensors.
    torch::NoGradGuard no_grad;
    model.forward(nn::inferenceInput(model, image.unsqueeze(0)), &tap);
  }
  model.train(was_training);
  if (onnx && tap.get(layer, "out").dim() != 4)
    throw Error("featuremaps: tensor '" + layer + "' is not a map (" +
                std::to_string(tap.get(layer, "out").dim()) + " dimensions; N x C x H x W needed)");
  BranchMaps b;
  b.layer = layer;
  b.op = onnx ? "onnx" : model.op().str();
  at::Tensor energy;
  if (tap.has(layer, "U1") && tap.has(layer, "U2")) {
    const auto u1 = tap.get(layer, "U1")[0].contiguous(), u2 = tap.get(layer, "U2")[0].contiguous();
    b.rows = {"U1", "U2", "U1+U2", "U1*U2", "U1-U2"};
    b.maps = {u1, u2, u1 + u2, u1 * u2, u1 - u2};
    if (tap.has(layer, "gate")) b.gate = tap.get(layer, "gate")[0].flatten();
    energy = (u1.pow(2) + u2.pow(2)).mean({1, 2});
  } else if (tap.has(layer, "sru")) {
    for (const char* k : {"sru", "up", "low", "cru"})
      if (tap.has(layer, k)) {
        b.rows.push_back(k);
        b.maps.push_back(tap.get(layer, k)[0].contiguous());
      }
    energy = tap.get(layer, "out")[0].pow(2).mean({1, 2});
  } else if (tap.has(layer, "star")) {
    // StarNet: both branches and their product, in the hidden (mlp x C) channels.
    for (const char* k : {"branch1", "branch2", "star"}) {
      b.rows.push_back(k);
      b.maps.push_back(tap.get(layer, k)[0].contiguous());
    }
    energy = b.maps.back().pow(2).mean({1, 2});
  } else if (tap.has(layer, "intrinsic") || tap.has(layer, "convolved")) {
    // Ghost: channels [0, C/s) intrinsic, the rest cheap; PConv: [0, C/div) convolved, the rest
    // passed through. GhostV2 adds its attention map.
    const bool ghost = tap.has(layer, "intrinsic");
    const auto a = tap.get(layer, ghost ? "intrinsic" : "convolved")[0];
    const auto c = tap.get(layer, ghost ? "cheap" : "untouched")[0];
    const int64_t C = tap.get(layer, "out").size(1);
    b.rows.push_back(ghost ? "intrinsic|cheap" : "convolved|untouched");
    b.maps.push_back(torch::cat({a, c}, 0).narrow(0, 0, C).contiguous());
    if (tap.has(layer, "attention")) {
      b.rows.push_back("attention");
      b.maps.push_back(tap.get(layer, "attention")[0].contiguous());
    }
    energy = tap.get(layer, "out")[0].pow(2).mean({1, 2});
  } else {
    energy = tap.get(layer, "out")[0].pow(2).mean({1, 2});
  }
  if (!tap.has(layer, "star")) {  // StarNet's rows are in its hidden channels, not the output's
    b.rows.push_back("out");
    b.maps.push_back(tap.get(layer, "out")[0].contiguous());
  }
  const int64_t k = std::min<int64_t>(top_k, energy.size(0));
  const auto idx = std::get<1>(energy.topk(k));
  for (int64_t i = 0; i < k; ++i) b.channels.push_back(idx[i].item<int64_t>());
  return b;
}

cv::Mat featureMapFigure(const BranchMaps& b, const FeatureFigureOptions& o) {
  viz::Grid g;
  g.tile = o.tile;
  g.title = b.layer + "  " + b.op + "  (top " + std::to_string(b.channels.size()) +
            " channels by energy; " + (o.shared_scale ? "shared" : "per-channel") + " scale, " +
            viz::colormapName(o.colormap) + ")";
  for (int64_t ch : b.channels) {
    std::string label = "ch " + std::to_string(ch);
    if (b.gate.defined() && ch < b.gate.size(0)) {
      char buf[24];
      std::snprintf(buf, sizeof buf, " c=%.2f", b.gate[ch].item<double>());
      label += buf;
    }
    g.col_labels.push_back(label);
  }
  for (size_t r = 0; r < b.maps.size(); ++r) {
    g.row_labels.push_back(b.rows[r]);
    const auto& m = b.maps[r];
    double lo = 0, hi = 0;
    if (o.shared_scale) {
      std::vector<at::Tensor> sel;
      for (int64_t ch : b.channels)
        if (ch < m.size(0)) sel.push_back(m[ch]);
      const auto all = torch::stack(sel);
      lo = all.min().item<double>(), hi = all.max().item<double>();
    }
    std::vector<cv::Mat> row;
    for (int64_t ch : b.channels) {
      if (ch >= m.size(0)) {  // a part with fewer channels (SCConv's halves)
        row.emplace_back();
        continue;
      }
      cv::Mat map = toMat(m[ch]);
      map = o.shared_scale ? (hi > lo ? (map - lo) / (hi - lo) : cv::Mat::zeros(map.size(), CV_32F))
                           : viz::scale01(map);
      row.push_back(viz::applyColormap(map, o.colormap));
    }
    g.cells.push_back(row);
  }
  return viz::renderGrid(g);
}

// ---- Grad-CAM family ---------------------------------------------------------------------------

CamMethod camMethodFromName(const std::string& n) {
  if (n == "gradcam") return CamMethod::kGradCam;
  if (n == "gradcam++" || n == "gradcampp") return CamMethod::kGradCamPlusPlus;
  if (n == "xgradcam") return CamMethod::kXGradCam;
  if (n == "hirescam") return CamMethod::kHiResCam;
  if (n == "layercam") return CamMethod::kLayerCam;
  if (n == "eigencam") return CamMethod::kEigenCam;
  if (n == "scorecam") return CamMethod::kScoreCam;
  throw Error("unknown CAM method '" + n +
              "' (gradcam, gradcam++, xgradcam, hirescam, layercam, eigencam, scorecam)");
}

const char* camMethodName(CamMethod m) {
  switch (m) {
    case CamMethod::kGradCam:
      return "gradcam";
    case CamMethod::kGradCamPlusPlus:
      return "gradcam++";
    case CamMethod::kXGradCam:
      return "xgradcam";
    case CamMethod::kHiResCam:
      return "hirescam";
    case CamMethod::kLayerCam:
      return "layercam";
    case CamMethod::kEigenCam:
      return "eigencam";
    case CamMethod::kScoreCam:
      return "scorecam";
  }
  return "?";
}

at::Tensor CamTarget::score(const at::Tensor& e) const {
  namespace F = torch::nn::functional;
  const auto n = F::normalize(e, F::NormalizeFuncOptions().dim(1));
  switch (kind) {
    case Kind::kCosine:
      if (!reference.defined()) throw Error("CAM target: cosine needs a reference embedding");
      return n.matmul(F::normalize(reference.view({-1}), F::NormalizeFuncOptions().dim(0)));
    case Kind::kIdentity: {
      if (!identity_weight.defined()) throw Error("CAM target: identity needs the head's centre");
      const auto cos =
          n.matmul(F::normalize(identity_weight.view({-1}), F::NormalizeFuncOptions().dim(0)));
      return scale * torch::cos(torch::acos(cos.clamp(-1 + 1e-7, 1 - 1e-7)) + margin);
    }
    case Kind::kNorm:
      return e.norm(2, 1);
  }
  return e.norm(2, 1);
}

CamTarget cosineTarget(nn::BackboneImpl& model, const at::Tensor& reference) {
  CamTarget t;
  t.kind = CamTarget::Kind::kCosine;
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  t.reference = model.forward(reference.unsqueeze(0))[0];
  model.train(was_training);
  return t;
}

std::string camRowLabel(const std::string& checkpoint, const std::string& op) {
  const std::filesystem::path p(checkpoint);
  std::string label = p.parent_path().filename().string();
  if (label.empty() || label == ".") label = p.stem().string();
  return label + " " + op;
}

TargetSpec parseTargetSpec(const std::string& text) {
  TargetSpec spec;
  if (text == "cosine") {
    spec.kind = CamTarget::Kind::kCosine;
  } else if (text.rfind("identity:", 0) == 0) {
    spec.kind = CamTarget::Kind::kIdentity;
    try {
      size_t used = 0;
      spec.identity = std::stoll(text.substr(9), &used);
      if (used != text.size() - 9 || spec.identity < 0) throw Error("");
    } catch (const std::exception&) {
      throw Error("'" + text + "' is not identity:N");
    }
  } else if (text != "norm") {
    throw Error("'" + text + "' is not cosine, norm or identity:N");
  }
  return spec;
}

CamTarget makeCamTarget(const TargetSpec& spec, nn::BackboneImpl& model,
                        const std::string& checkpoint, const at::Tensor& reference) {
  CamTarget t;
  if (spec.kind == CamTarget::Kind::kCosine) {
    if (!reference.defined()) throw Error("the cosine target needs a reference image");
    return cosineTarget(model, reference);
  }
  if (spec.kind == CamTarget::Kind::kIdentity) {
    const torch::Tensor w = workspace::readHead(checkpoint);
    if (spec.identity >= w.size(0))
      throw Error(checkpoint + ": identity " + std::to_string(spec.identity) +
                  " is not one of the head's " + std::to_string(w.size(0)) + " classes");
    t.kind = CamTarget::Kind::kIdentity;
    t.identity_weight = w[spec.identity].clone();
  }
  return t;
}

cv::Mat CamResult::average() const {
  if (cams.empty()) return {};
  cv::Mat acc = cv::Mat::zeros(cams[0].size(), CV_32F);
  for (const auto& c : cams) acc += c;
  return viz::scale01(acc / static_cast<double>(cams.size()));
}

at::Tensor camFromGradients(CamMethod method, const at::Tensor& A, const at::Tensor& G) {
  switch (method) {
    case CamMethod::kGradCam: {
      const auto w = G.mean({2, 3}, true);
      return (w * A).sum(1)[0];
    }
    case CamMethod::kGradCamPlusPlus: {
      const auto g2 = G.pow(2), g3 = G.pow(3);
      const auto sum_a = A.sum({2, 3}, true);
      // eps 1e-6 as pytorch-grad-cam's grad_cam_plusplus.py (gradients of a cosine target are
      // small, so the eps is not negligible next to g^2).
      auto aij = g2 / (2 * g2 + sum_a * g3 + 1e-6);
      aij = torch::where(G != 0, aij, torch::zeros_like(aij));
      const auto w = (torch::relu(G) * aij).sum({2, 3}, true);
      return (w * A).sum(1)[0];
    }
    case CamMethod::kXGradCam: {
      const auto sum_a = A.sum({2, 3}, true);
      const auto w = (G * A / (sum_a + 1e-7)).sum({2, 3}, true);
      return (w * A).sum(1)[0];
    }
    case CamMethod::kHiResCam:
      return (G * A).sum(1)[0];
    case CamMethod::kLayerCam:
      return (torch::relu(G) * A).sum(1)[0];
    case CamMethod::kEigenCam: {
      // Projection of the (centred) spatial positions on the first principal component
      // (pytorch-grad-cam's get_2d_projection). The component's sign is arbitrary in an SVD and
      // the projection of centred data always sums to zero, so the sign is fixed on the
      // component: its channel weights sum to a positive value, i.e. the map correlates
      // positively with the channels' mean activation.
      const int64_t C = A.size(1), h = A.size(2), w = A.size(3);
      auto r = A[0].reshape({C, h * w}).t().to(torch::kFloat64);
      r = r - r.mean(0, true);
      auto v = std::get<2>(torch::linalg_svd(r, /*full_matrices=*/false))[0];  // Vh's first row
      if (v.sum().item<double>() < 0) v = -v;
      return r.matmul(v).reshape({h, w}).to(A.scalar_type());
    }
    case CamMethod::kScoreCam:
      throw Error("ScoreCAM needs forward passes of masked images: use computeCams");
  }
  return {};
}

CamResult computeCams(const TappedForward& forward, const at::Tensor& image,
                      const CamTarget& target, const CamOptions& o) {
  if (o.layers.empty()) throw Error("gradcam: no layers to explain");
  const int H = static_cast<int>(image.size(1)), W = static_cast<int>(image.size(2));
  auto run = [&](const at::Tensor& img, double* value) {
    std::vector<cv::Mat> cams;
    nn::Tap tap(o.layers);
    const auto x = img.unsqueeze(0);
    std::vector<at::Tensor> acts, grads;
    if (o.method == CamMethod::kScoreCam || o.method == CamMethod::kEigenCam) {
      torch::NoGradGuard no_grad;
      const auto score = target.score(forward(x, &tap));
      if (value) *value = score[0].item<double>();
      for (const auto& l : o.layers) acts.push_back(tap.get(l, "out").detach());
    } else {
      torch::AutoGradMode grad_mode(true);
      const auto score = target.score(forward(x, &tap));
      if (value) *value = score[0].item<double>();
      for (const auto& l : o.layers) acts.push_back(tap.get(l, "out"));
      grads = torch::autograd::grad({score.sum()}, acts, {}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
    }
    for (size_t i = 0; i < acts.size(); ++i) {
      const auto A = acts[i].detach().to(torch::kFloat).contiguous();
      at::Tensor raw;
      if (o.method == CamMethod::kScoreCam) {
        // Each channel, upsampled and min-max scaled, masks the image; the target scores of the
        // masked images, softmaxed, weight the channels.
        torch::NoGradGuard no_grad;
        auto up = torch::upsample_bilinear2d(A, {H, W}, false).transpose(0, 1);  // C x 1 x H x W
        const auto lo = std::get<0>(up.flatten(1).min(1)).view({-1, 1, 1, 1});
        const auto hi = std::get<0>(up.flatten(1).max(1)).view({-1, 1, 1, 1});
        up = (up - lo) / (hi - lo + 1e-7);
        std::vector<at::Tensor> scores;
        for (int64_t s = 0; s < up.size(0); s += o.score_batch) {
          const auto m = up.narrow(0, s, std::min<int64_t>(o.score_batch, up.size(0) - s));
          scores.push_back(target.score(forward(x * m, nullptr)));
        }
        const auto w = torch::softmax(torch::cat(scores), 0).view({1, -1, 1, 1});
        raw = (w * A).sum(1)[0];
      } else {
        at::Tensor G = i < grads.size() && grads[i].defined() ? grads[i].to(torch::kFloat)
                                                              : torch::zeros_like(A);
        raw = camFromGradients(o.method, A, G);
      }
      cams.push_back(finishCam(raw, H, W));
    }
    return cams;
  };
  CamResult r;
  r.layers = o.layers;
  r.cams = run(image, &r.target);
  if (o.flip_smooth) {
    const auto flipped = run(image.flip({2}), nullptr);
    for (size_t i = 0; i < r.cams.size(); ++i) {
      cv::Mat back;
      cv::flip(flipped[i], back, 1);
      r.cams[i] = (r.cams[i] + back) * 0.5;
    }
  }
  return r;
}

CamResult computeCams(nn::BackboneImpl& model, const at::Tensor& image, const CamTarget& target,
                      CamOptions options) {
  if (!model.differentiable() && options.method != CamMethod::kEigenCam &&
      options.method != CamMethod::kScoreCam)
    throw Error(std::string("gradcam: ") + camMethodName(options.method) + " needs gradients; " +
                model.arch().description +
                " is an ONNX model run by OpenCV's DNN module, which has none: use eigencam or "
                "scorecam");
  if (options.layers.empty()) options.layers = model.stageOutputs();
  if (options.layers.empty())
    throw Error("gradcam: name the tensors to explain (--layer NAME): " + model.arch().description +
                " has no stages MSConv Lab knows");
  const auto known = model.layerNames();
  for (const auto& l : options.layers)
    if (std::find(known.begin(), known.end(), l) == known.end())
      throw Error("gradcam: no layer '" + l + "' in " + model.arch().name +
                  " (layers: " + listOf(known) + ")");
  const bool was_training = model.is_training();
  model.eval();
  auto result =
      computeCams([&](const at::Tensor& x, nn::Tap* tap) { return model.forward(x, tap); }, image,
                  target, options);
  model.train(was_training);
  return result;
}

PairCams pairCams(nn::BackboneImpl& model, const at::Tensor& image_a, const at::Tensor& image_b,
                  const CamOptions& options) {
  PairCams p;
  p.a = computeCams(model, image_a, cosineTarget(model, image_b), options);
  p.b = computeCams(model, image_b, cosineTarget(model, image_a), options);
  p.cosine = p.a.target;
  return p;
}

cv::Mat camFigure(const cv::Mat& image_bgr, const std::vector<CamRow>& rows, viz::Colormap colormap,
                  double image_weight, int tile, const std::string& title) {
  viz::Grid g;
  g.tile = tile;
  g.title = title;
  size_t ncols = 0;
  for (const auto& r : rows) ncols = std::max(ncols, r.result.layers.size());
  if (!rows.empty()) g.col_labels = rows.front().result.layers;
  if (ncols > 1) g.col_labels.push_back("mean");
  for (const auto& r : rows) {
    g.row_labels.push_back(r.label);
    std::vector<cv::Mat> cells;
    for (const auto& cam : r.result.cams)
      cells.push_back(viz::overlay(image_bgr, cam, colormap, image_weight));
    if (ncols > 1)
      cells.push_back(viz::overlay(image_bgr, r.result.average(), colormap, image_weight));
    g.cells.push_back(cells);
  }
  return viz::renderGrid(g);
}

cv::Mat tensorToBgr(const at::Tensor& image) {
  const auto t = ((image.detach().cpu().to(torch::kFloat) * 0.5 + 0.5) * 255.0)
                     .round()
                     .clamp(0, 255)
                     .to(torch::kUInt8)
                     .permute({1, 2, 0})
                     .contiguous();
  cv::Mat rgb(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_8UC3, t.data_ptr());
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

at::Tensor bgrToTensor(const cv::Mat& bgr) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  const auto t = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8)
                     .permute({2, 0, 1})
                     .to(torch::kFloat);
  return (t / 255.0 - 0.5) / 0.5;
}

}  // namespace msconv::inspect
