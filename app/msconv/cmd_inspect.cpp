// msconv featuremaps / gradcam: the paper's Fig. 6 (what an operator's branches carry, add /
// multiply / subtract) and Fig. 7 (Grad-CAM family across layers and models) as PNG figures.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <iostream>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "msconv/data/image.h"
#include "msconv/error.h"
#include "msconv/inspect/inspect.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/backbone.h"
#include "msconv/viz/figure.h"

namespace msconv::cli {
namespace {

std::vector<std::string> splitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

double realOption(const Args& args, const std::string& name, double fallback) {
  const auto v = args.value(name);
  if (!v) return fallback;
  try {
    size_t used = 0;
    const double d = std::stod(*v, &used);
    if (used == v->size()) return d;
  } catch (const std::exception&) {
  }
  throw Error(name + ": '" + *v + "' is not a number");
}

}  // namespace

int cmdFeatureMaps(const Argv& argv) {
  Args args(argv, {
                      {"--checkpoint", true, "checkpoint file, or a run of --workspace"},
                      {"--workspace", true, "workspace of the runs (default ./runs)"},
                      {"--image", true, "face image (resized to 112x112)"},
                      {"--layer", true, "operator layer (default: the first, e.g. stage1.0.op)"},
                      {"--top", true, "channels shown, by activation energy (5)"},
                      {"--shared-scale", false, "one colour scale per row instead of per channel"},
                      {"--colormap", true, "viridis (default), jet, turbo, inferno, gray"},
                      {"--list-layers", false, "print the operator layers and exit"},
                      {"--output", true, "PNG to write", "-o"},
                      {"--help", false, "this help"},
                  });
  if (args.flag("--help")) {
    std::cout << "usage: msconv featuremaps --checkpoint CKPT --image IMG [--layer NAME] [--top 5] "
                 "-o fig.png\n"
              << args.usage();
    return 0;
  }
  auto loaded = model::loadModel(resolveCheckpoint(args, args.required("--checkpoint")));
  if (args.flag("--list-layers")) {
    for (const auto& l : loaded.model->operatorLayers()) std::cout << l << "\n";
    return 0;
  }
  const std::string out = args.required("--output");
  const auto image = data::loadFaceImage(args.required("--image"), 112);
  const auto maps = inspect::captureBranchMaps(
      *loaded.model, image, args.value("--layer").value_or(""), args.integer("--top", 5));
  inspect::FeatureFigureOptions o;
  o.shared_scale = args.flag("--shared-scale");
  o.colormap = viz::colormapFromName(args.value("--colormap").value_or("viridis"));
  viz::writePng(out, inspect::featureMapFigure(maps, o));
  std::cout << out << "\n";
  return 0;
}

int cmdGradCam(const Argv& argv) {
  Args args(argv, {
                      {"--checkpoint", true, "checkpoint file or run (repeatable: one row each)"},
                      {"--workspace", true, "workspace of the runs (default ./runs)"},
                      {"--image", true, "face image (resized to 112x112)"},
                      {"--reference", true, "target: cosine similarity to this image's embedding"},
                      {"--target", true, "cosine (with --reference), norm, or identity:N"},
                      {"--method", true,
                       "gradcam (default), gradcam++, xgradcam, hirescam, layercam, eigencam, "
                       "scorecam"},
                      {"--layers", true, "comma-separated layers (default: last unit per stage)"},
                      {"--flip", false, "average with the CAM of the mirrored image"},
                      {"--colormap", true, "jet (default), turbo, viridis, inferno"},
                      {"--alpha", true, "weight of the image in the overlay (0.5)"},
                      {"--json", false, "also print the target values and layers as JSON"},
                      {"--output", true, "PNG to write", "-o"},
                      {"--help", false, "this help"},
                  });
  std::vector<std::string> ckpts;
  for (const auto& c : args.values("--checkpoint")) ckpts.push_back(resolveCheckpoint(args, c));
  if (args.flag("--help") || ckpts.empty()) {
    std::cout << "usage: msconv gradcam --checkpoint A [--checkpoint B ...] --image IMG "
                 "[--reference IMG] [--method gradcam] [--layers ...] -o fig.png\n"
              << args.usage();
    return ckpts.empty() && !args.flag("--help") ? 2 : 0;
  }
  const std::string out = args.required("--output");
  const auto image = data::loadFaceImage(args.required("--image"), 112);
  const auto reference = args.value("--reference");
  std::string target = args.value("--target").value_or(reference ? "cosine" : "norm");
  if (target == "cosine" && !reference)
    throw Error(
        "--target cosine needs --reference IMG (another image of the same or another "
        "person)");
  inspect::TargetSpec spec;
  try {
    spec = inspect::parseTargetSpec(target);
  } catch (const Error& e) {
    throw Error(std::string("--target: ") + e.what());
  }
  const at::Tensor reference_image = spec.kind == inspect::CamTarget::Kind::kCosine
                                         ? data::loadFaceImage(*reference, 112)
                                         : at::Tensor();
  inspect::CamOptions o;
  o.method = inspect::camMethodFromName(args.value("--method").value_or("gradcam"));
  if (auto l = args.value("--layers")) o.layers = splitCommas(*l);
  o.flip_smooth = args.flag("--flip");
  const auto cmap = viz::colormapFromName(args.value("--colormap").value_or("jet"));
  const double alpha = realOption(args, "--alpha", 0.5);
  if (alpha < 0 || alpha > 1) throw Error("--alpha must be within [0, 1]");
  std::vector<inspect::CamRow> rows;
  nlohmann::json j = nlohmann::json::array();
  for (const auto& ckpt : ckpts) {
    auto loaded = model::loadModel(ckpt);
    const auto t = inspect::makeCamTarget(spec, *loaded.model, ckpt, reference_image);
    inspect::CamRow row;
    row.label = inspect::camRowLabel(ckpt, loaded.op);
    row.result = inspect::computeCams(*loaded.model, image, t, o);
    j.push_back({{"checkpoint", ckpt},
                 {"op", loaded.op},
                 {"target", row.result.target},
                 {"layers", row.result.layers}});
    rows.push_back(std::move(row));
  }
  const std::string title = std::string(inspect::camMethodName(o.method)) + ", target " + target +
                            (o.flip_smooth ? ", flip-smoothed" : "");
  viz::writePng(out,
                inspect::camFigure(inspect::tensorToBgr(image), rows, cmap, alpha, 112, title));
  if (args.flag("--json")) std::cout << j.dump() << "\n";
  std::cout << out << "\n";
  return 0;
}

}  // namespace msconv::cli
