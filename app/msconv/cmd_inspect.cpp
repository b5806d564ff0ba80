// msconv featuremaps / gradcam: the paper's Fig. 6 (what an operator's branches carry, add /
// multiply / subtract) and Fig. 7 (Grad-CAM family across layers and models) as PNG figures.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "msconv/atomic_file.h"
#include "msconv/data/image.h"
#include "msconv/data/pairs.h"
#include "msconv/error.h"
#include "msconv/inspect/arrays.h"
#include "msconv/inspect/faithfulness.h"
#include "msconv/inspect/inspect.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/inference.h"
#include "msconv/viz/figure.h"

namespace msconv::cli {
namespace {

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

std::string fmt(double v, const char* format) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

int cmdFeatureMaps(const Argv& argv) {
  Args args(
      argv,
      {
          {"--checkpoint", true, "checkpoint file, or a run of --workspace"},
          {"--workspace", true, "workspace of the runs (default ./runs)"},
          {"--image", true, "face image (resized to 112x112)"},
          {"--layer", true,
           "operator layer (default: the first, e.g. stage1.0.op), or an ONNX model's tensor"},
          {"--top", true, "channels shown, by activation energy (5)"},
          {"--shared-scale", false, "one colour scale per row instead of per channel"},
          {"--colormap", true, "viridis (default), jet, turbo, inferno, gray"},
          {"--list-layers", false, "print the operator layers (an ONNX model's tensors) and exit"},
          {"--save-arrays", true,
           "folder: each row's maps (all channels, C x H x W) as float32 .npy, the "
           "gate (C), and index.json"},
          {"--output", true, "PNG to write", "-o"},
          {"--training-graph", false,
           "run the model as trained, not its inference form (BatchNorm folded)"},
          {"--help", false, "this help"},
      });
  if (args.flag("--help")) {
    std::cout << "usage: msconv featuremaps --checkpoint CKPT --image IMG [--layer NAME] [--top 5] "
                 "-o fig.png | --save-arrays DIR\n"
              << args.usage();
    return 0;
  }
  const std::string ckpt = resolveCheckpoint(args, args.required("--checkpoint"));
  auto loaded = model::loadModel(ckpt);
  if (args.flag("--list-layers")) {
    // An ONNX model's layers are its graph's tensors.
    const auto layers = loaded.model->differentiable() ? loaded.model->operatorLayers()
                                                       : loaded.model->layerNames();
    for (const auto& l : layers) std::cout << l << "\n";
    return 0;
  }
  const auto out = args.value("--output");
  const auto arrays = args.value("--save-arrays");
  if (!out && !arrays) throw Error("--output: required (or --save-arrays DIR)");
  const auto image = data::loadFaceImage(args.required("--image"), 112);
  if (!args.flag("--training-graph")) nn::prepareInference(*loaded.model);
  const auto maps = inspect::captureBranchMaps(
      *loaded.model, image, args.value("--layer").value_or(""), args.integer("--top", 5));
  if (arrays) {
    inspect::ArrayFolder w(*arrays);
    w.addBranchMaps(inspect::camRowLabel(ckpt, loaded.op), maps);
    w.finish();
  }
  if (out) {
    inspect::FeatureFigureOptions o;
    o.shared_scale = args.flag("--shared-scale");
    o.colormap = viz::colormapFromName(args.value("--colormap").value_or("viridis"));
    viz::writePng(*out, inspect::featureMapFigure(maps, o));
    std::cout << *out << "\n";
  }
  if (arrays) std::cout << *arrays << "/index.json\n";
  return 0;
}

namespace {

nlohmann::json faithfulnessJson(const inspect::FaithfulnessRow& r, const std::string& checkpoint,
                                const std::vector<inspect::FaithfulnessMetric>& metrics) {
  using M = inspect::FaithfulnessMetric;
  auto has = [&](M m) { return std::find(metrics.begin(), metrics.end(), m) != metrics.end(); };
  nlohmann::json j = {{"model", r.model},   {"checkpoint", checkpoint}, {"layer", r.layer},
                      {"method", r.method}, {"pairs", r.pairs},         {"target", r.target}};
  if (has(M::kDeletion)) j["deletion_auc"] = r.deletion_auc;
  if (has(M::kInsertion)) j["insertion_auc"] = r.insertion_auc;
  if (has(M::kRoad)) {
    j["road_most"] = r.road_most;
    j["road_least"] = r.road_least;
    j["road_combined"] = r.road_combined;
  }
  if (has(M::kDrop)) {
    j["drop"] = r.drop;
    j["increase"] = r.increase;
  }
  return j;
}

void printFaithfulnessTable(const std::vector<inspect::FaithfulnessRow>& rows,
                            const std::vector<inspect::FaithfulnessMetric>& metrics) {
  using M = inspect::FaithfulnessMetric;
  auto has = [&](M m) { return std::find(metrics.begin(), metrics.end(), m) != metrics.end(); };
  size_t wm = 5, wl = 5, wh = 6;
  for (const auto& r : rows) {
    wm = std::max(wm, r.model.size());
    wl = std::max(wl, r.layer.size());
    wh = std::max(wh, r.method.size());
  }
  auto pad = [](std::string s, size_t w) { return s.append(w > s.size() ? w - s.size() : 0, ' '); };
  auto col = [](const std::string& s) {
    return std::string(s.size() < 10 ? 10 - s.size() : 0, ' ') + s;
  };
  std::string line =
      pad("model", wm) + "  " + pad("layer", wl) + "  " + pad("method", wh) + "  pairs   target";
  if (has(M::kDeletion)) line += col("deletion") + " ";
  if (has(M::kInsertion)) line += col("insertion") + " ";
  if (has(M::kRoad))
    line += col("road_most") + " " + col("road_least") + " " + col("road_comb") + " ";
  if (has(M::kDrop)) line += col("drop_%") + " " + col("increase") + " ";
  while (!line.empty() && line.back() == ' ') line.pop_back();
  std::cout << line << "\n";
  for (const auto& r : rows) {
    char head[32];
    std::snprintf(head, sizeof head, "  %5d %8s", r.pairs, fmt(r.target, "%.4f").c_str());
    line = pad(r.model, wm) + "  " + pad(r.layer, wl) + "  " + pad(r.method, wh) + head;
    if (has(M::kDeletion)) line += col(fmt(r.deletion_auc, "%.4f")) + " ";
    if (has(M::kInsertion)) line += col(fmt(r.insertion_auc, "%.4f")) + " ";
    if (has(M::kRoad))
      line += col(fmt(r.road_most, "%+.4f")) + " " + col(fmt(r.road_least, "%+.4f")) + " " +
              col(fmt(r.road_combined, "%+.4f")) + " ";
    if (has(M::kDrop)) line += col(fmt(r.drop, "%.2f")) + " " + col(fmt(r.increase, "%.3f")) + " ";
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

}  // namespace

int cmdGradCam(const Argv& argv) {
  Args args(argv, {
                      {"--checkpoint", true, "checkpoint file or run (repeatable: one row each)"},
                      {"--workspace", true, "workspace of the runs (default ./runs)"},
                      {"--image", true, "face image (resized to 112x112)"},
                      {"--reference", true, "target: cosine similarity to this image's embedding"},
                      {"--target", true, "cosine (with --reference), norm, or identity:N"},
                      {"--method", true,
                       "gradcam (default), gradcam++, xgradcam, hirescam, layercam, eigencam, "
                       "scorecam; a comma list with --metrics or --save-arrays"},
                      {"--layers", true, "comma-separated layers (default: last unit per stage)"},
                      {"--flip", false, "average with the CAM of the mirrored image"},
                      {"--colormap", true, "jet (default), turbo, viridis, inferno"},
                      {"--alpha", true, "weight of the image in the overlay (0.5)"},
                      {"--save-arrays", true,
                       "folder: each CAM (per model, layer, method, and the mean) as float32 "
                       "112x112 .npy, and index.json"},
                      {"--metrics", true,
                       "faithfulness on --pairs: deletion,insertion,road,drop (a comma list)"},
                      {"--pairs", true, "pair set (.bin) for --metrics: its genuine pairs"},
                      {"--n", true, "pairs measured for --metrics (10), evenly spread"},
                      {"--steps", true, "deletion / insertion steps (20)"},
                      {"--baseline", true, "deletion / insertion baseline: blur (default), mean"},
                      {"--seed", true, "ROAD's imputation noise seed (0)"},
                      {"--json", false,
                       "print the target values and layers (with --metrics: the faithfulness rows) "
                       "as JSON"},
                      {"--output", true, "PNG to write", "-o"},
                      {"--help", false, "this help"},
                  });
  std::vector<std::string> ckpts;
  for (const auto& c : args.values("--checkpoint")) ckpts.push_back(resolveCheckpoint(args, c));
  if (args.flag("--help") || ckpts.empty()) {
    std::cout
        << "usage: msconv gradcam --checkpoint A [--checkpoint B ...] --image IMG "
           "[--reference IMG] [--method gradcam] [--layers ...] -o fig.png | "
           "--save-arrays DIR\n"
           "       msconv gradcam --checkpoint A [...] --metrics deletion,insertion,road,drop "
           "--pairs SET.bin [--n 10] [--steps 20] [--baseline blur] [--method LIST] [--json]\n"
        << args.usage();
    return ckpts.empty() && !args.flag("--help") ? 2 : 0;
  }
  std::vector<inspect::CamMethod> methods;
  for (const auto& m : splitCommas(args.value("--method").value_or("gradcam")))
    methods.push_back(inspect::camMethodFromName(m));
  if (methods.empty()) throw Error("--method: no method given");
  const auto metrics_text = args.value("--metrics");
  std::vector<inspect::FaithfulnessMetric> metrics;
  if (metrics_text) {
    try {
      metrics = inspect::parseFaithfulnessMetrics(*metrics_text);
    } catch (const Error& e) {
      throw Error(std::string("--metrics: ") + e.what());
    }
  }
  const auto out = args.value("--output");
  const auto arrays = args.value("--save-arrays");
  const bool cams_wanted = !metrics_text || args.value("--image") || out || arrays;
  if (!cams_wanted)
    for (const char* only : {"--reference", "--target"})
      if (args.value(only))
        throw Error(std::string(only) +
                    " is for the CAMs of --image: --metrics explains each pair's first image for "
                    "its cosine to the second");
  if (cams_wanted && !out && !arrays)
    throw Error("--output: required (or --save-arrays DIR, or --metrics with --pairs)");
  if (out && methods.size() > 1)
    throw Error(
        "--output draws one method: give one --method (a list is for --metrics and "
        "--save-arrays)");
  inspect::CamOptions o;
  if (auto l = args.value("--layers")) o.layers = splitCommas(*l);
  o.flip_smooth = args.flag("--flip");
  const auto cmap = viz::colormapFromName(args.value("--colormap").value_or("jet"));
  const double alpha = realOption(args, "--alpha", 0.5);
  if (alpha < 0 || alpha > 1) throw Error("--alpha must be within [0, 1]");

  // Faithfulness options first, so that a bad one fails before any CAM is computed.
  std::shared_ptr<data::PairSet> set;
  inspect::FaithfulnessOptions fo;
  int n = 0;
  if (metrics_text) {
    fo.metrics = metrics;
    fo.steps = args.integer("--steps", 20);
    if (fo.steps < 1) throw Error("--steps must be at least 1");
    try {
      fo.baseline = inspect::baselineFromName(args.value("--baseline").value_or("blur"));
    } catch (const Error& e) {
      throw Error(std::string("--baseline: ") + e.what());
    }
    fo.seed = static_cast<uint64_t>(args.integer("--seed", 0));
    n = args.integer("--n", 10);
    set = std::make_shared<data::PairSet>(data::readPairsBin(args.required("--pairs")));
    inspect::faithfulnessPairs(*set, n);  // --n against the set, before any work
  } else {
    for (const char* only : {"--pairs", "--n", "--steps", "--baseline", "--seed"})
      if (args.value(only)) throw Error(std::string(only) + " is an option of --metrics");
  }

  nlohmann::json cams_json = nlohmann::json::array();
  std::string target;
  if (cams_wanted) {
    const auto image = data::loadFaceImage(args.required("--image"), 112);
    const auto reference = args.value("--reference");
    target = args.value("--target").value_or(reference ? "cosine" : "norm");
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
    std::unique_ptr<inspect::ArrayFolder> writer;
    if (arrays) writer = std::make_unique<inspect::ArrayFolder>(*arrays);
    std::vector<inspect::CamRow> rows;
    for (size_t k = 0; k < ckpts.size(); ++k) {
      const auto& ckpt = ckpts[k];
      auto loaded = model::loadModel(ckpt);
      const auto t = inspect::makeCamTarget(spec, *loaded.model, ckpt, reference_image);
      const std::string label = inspect::camRowLabel(ckpt, loaded.op);
      for (const auto method : methods) {
        inspect::CamOptions om = o;
        om.method = method;
        inspect::CamRow row;
        row.label = label;
        row.result = inspect::computeCams(*loaded.model, image, t, om);
        cams_json.push_back({{"checkpoint", ckpt},
                             {"op", loaded.op},
                             {"method", inspect::camMethodName(method)},
                             {"target", row.result.target},
                             {"layers", row.result.layers}});
        if (writer)
          writer->addCams(static_cast<int>(k), label, row.result, inspect::camMethodName(method),
                          target);
        rows.push_back(std::move(row));
      }
    }
    if (writer) writer->finish();
    if (out) {
      const std::string title = std::string(inspect::camMethodName(methods[0])) + ", target " +
                                target + (o.flip_smooth ? ", flip-smoothed" : "");
      viz::writePng(*out,
                    inspect::camFigure(inspect::tensorToBgr(image), rows, cmap, alpha, 112, title));
    }
  }

  nlohmann::json rows_json = nlohmann::json::array();
  if (metrics_text) {
    std::vector<inspect::FaithfulnessRow> rows;
    for (const auto& ckpt : ckpts) {
      auto loaded = model::loadModel(ckpt);
      const std::string label = inspect::camRowLabel(ckpt, loaded.op);
      for (const auto method : methods) {
        inspect::CamOptions om = o;
        om.method = method;
        for (auto& r : inspect::faithfulnessOnPairs(*loaded.model, label, *set, n, om, fo)) {
          rows_json.push_back(faithfulnessJson(r, ckpt, metrics));
          rows.push_back(std::move(r));
        }
      }
    }
    if (!args.flag("--json")) {
      std::cout << "faithfulness on " << set->path << ": " << n
                << " genuine pairs, the first image "
                << "explained for its cosine to the second; " << fo.steps << " steps, "
                << (fo.baseline == inspect::FaithfulnessOptions::Baseline::kBlur ? "blur" : "mean")
                << " baseline\n";
      printFaithfulnessTable(rows, metrics);
    }
  }
  if (args.flag("--json")) {
    if (metrics_text) {
      nlohmann::json m = nlohmann::json::array();
      for (auto x : metrics) m.push_back(inspect::faithfulnessMetricName(x));
      nlohmann::json j = {
          {"pairs", set->path},
          {"n", n},
          {"steps", fo.steps},
          {"baseline",
           fo.baseline == inspect::FaithfulnessOptions::Baseline::kBlur ? "blur" : "mean"},
          {"road_fractions", fo.road_percentiles},
          {"metrics", m},
          {"rows", rows_json}};
      if (cams_wanted) j["cams"] = cams_json;
      std::cout << j.dump() << "\n";
    } else {
      std::cout << cams_json.dump() << "\n";
    }
  }
  if (out) std::cout << *out << "\n";
  if (arrays) std::cout << *arrays << "/index.json\n";
  return 0;
}

}  // namespace msconv::cli
