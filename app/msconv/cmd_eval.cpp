// msconv eval / compare / failures: verification accuracy, VAL, TAR@FAR, ROC, AUC, DET, EER and
// score histograms of a checkpoint on pair sets and IJB-B/C, its per-pair scores kept in the
// workspace; a paper-style table comparing runs or checkpoints; the pairs models get wrong.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "msconv/atomic_file.h"
#include "msconv/data/ijb.h"
#include "msconv/data/pairs.h"
#include "msconv/error.h"
#include "msconv/eval/compare.h"
#include "msconv/eval/det.h"
#include "msconv/eval/evaluate.h"
#include "msconv/eval/failures.h"
#include "msconv/eval/ijb.h"
#include "msconv/eval/metric_name.h"
#include "msconv/eval/pair_scores.h"
#include "msconv/eval/verification.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/complexity.h"
#include "msconv/store/run_store.h"
#include "msconv/workspace/training_checkpoint.h"
#include "msconv/workspace/workspace.h"

namespace fs = std::filesystem;

namespace msconv::cli {
namespace {

std::string farName(double far) {
  return eval::MetricName::farText(far);
}

nlohmann::json rocJson(const eval::Roc& roc) {
  nlohmann::json j;
  j["auc"] = roc.auc;
  j["genuine"] = roc.genuine;
  j["impostor"] = roc.impostor;
  for (const auto& [far, tar] : roc.tar_at_far) j["tar_at_far"][farName(far)] = tar;
  return j;
}

void writeRocCsv(const std::string& dir, const std::string& name, const eval::Roc& roc,
                 nlohmann::json& j) {
  if (dir.empty()) return;
  fs::create_directories(dir);
  const std::string path = (fs::path(dir) / (name + ".roc.csv")).string();
  writeFileAtomically(path, eval::rocCsv(eval::thinRoc(roc, 2000)));
  j["roc_csv"] = path;
}

// Where a command keeps per-pair scores: --workspace when given, else the workspace the
// checkpoint is a run of, else ./runs (the default workspace).
std::string scoresWorkspace(const Args& args, const std::string& ckpt) {
  if (auto w = args.value("--workspace")) return *w;
  if (auto w = workspace::Workspace::ofCheckpoint(ckpt)) return w->root();
  return workspace::kDefaultWorkspace;
}

double farOption(const Args& args) {
  const std::string v = args.value("--far").value_or("1e-3");
  try {
    size_t used = 0;
    const double f = std::stod(v, &used);
    if (used == v.size() && f > 0 && f <= 1) return f;
  } catch (const std::exception&) {
  }
  throw Error("--far: '" + v + "' is not a FAR in (0, 1]");
}

// DET points, EER and the score histogram of a set (its cosine scores), into the set's JSON.
void detJson(const eval::Roc& roc, const std::vector<float>& scores,
             const std::vector<uint8_t>& labels, double far, nlohmann::json& s, eval::Det& det) {
  det = eval::computeDet(roc, 500);
  s["eer"] = det.eer;
  s["eer_threshold"] = det.eer_threshold;
  s["det"] = nlohmann::json::array();
  for (const auto& p : det.points)
    s["det"].push_back({{"fmr", p.fmr}, {"fnmr", p.fnmr}, {"threshold", p.threshold}});
  const auto h = eval::scoreHistogram(scores.data(), labels.data(),
                                      static_cast<int64_t>(scores.size()), 50, far);
  s["histogram"] = {{"lo", h.lo},
                    {"hi", h.hi},
                    {"genuine", h.genuine},
                    {"impostor", h.impostor},
                    {"threshold", h.threshold},
                    {"far", h.far}};
}

std::string detCsv(const eval::Det& det) {
  std::ostringstream o;
  o.precision(9);
  o << "fmr,fnmr,threshold\n";
  for (const auto& p : det.points) o << p.fmr << "," << p.fnmr << "," << p.threshold << "\n";
  return o.str();
}

struct EvalOutput {
  nlohmann::json json;
  std::vector<std::vector<std::string>> rows;  // for the table
};

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", 100 * v);
  return b;
}

void printTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i)
      std::cout << (i ? "  " : "") << r[i] << std::string(w[i] - r[i].size(), ' ');
    std::cout << "\n";
  }
}

}  // namespace

int cmdEval(const Argv& argv) {
  Args args(
      argv,
      {
          {"--checkpoint", true, "checkpoint file, or a run of --workspace (its best)"},
          {"--workspace", true, "workspace of the runs (default ./runs)"},
          {"--bin", true, "verification .bin (repeatable; default: the run's data.val)"},
          {"--ijb", true, "IJB-B/C root (meta/, loose_crop/)"},
          {"--ijb-set", true, "ijbc or ijbb (default: the one under meta/)"},
          {"--no-detector-score", false, "IJB: do not weight images by detector score"},
          {"--normalise-images", false, "IJB: L2-normalise each image first"},
          {"--batch", true, "images per forward pass (64)"},
          {"--training-graph", false,
           "embed with the model as trained, not its inference form (BatchNorm folded)"},
          {"--roc-dir", true, "write SET.roc.csv (about 2,000 log-spaced points) here"},
          {"--det-dir", true, "write SET.det.csv (fmr,fnmr,threshold; about 500 points) here"},
          {"--pairs-out", true, "write each pair's score and label to this CSV (one set)"},
          {"--far", true, "FAR whose threshold the JSON's score histogram marks (1e-3)"},
          {"--json", false, "print one JSON document"},
          {"--help", false, "this help"},
      });
  if (args.flag("--help")) {
    std::cout << "usage: msconv eval --checkpoint CKPT_OR_RUN [--workspace DIR] [--bin FILE]... "
                 "[--ijb DIR [--ijb-set "
                 "ijbc]] [--roc-dir DIR] [--det-dir DIR] [--pairs-out FILE.csv] [--far F] "
                 "[--json]\n"
                 "Each set's per-pair scores are kept in the workspace (--workspace, else the "
                 "checkpoint's run's, else ./runs) for msconv failures.\n"
              << args.usage();
    return 0;
  }
  const std::string ckpt = resolveCheckpoint(args, args.required("--checkpoint"));
  const double far = farOption(args);
  eval::EvaluateOptions o;
  o.batch = args.integer("--batch", 64);
  o.training_graph = args.flag("--training-graph");
  o.sets = args.values("--bin");
  if (auto root = args.value("--ijb")) {
    if (o.sets.empty())
      o.sets = {*root};  // IJB alone: not the checkpoint's validation sets
    else
      o.sets.push_back(*root);
    o.ijb_set = args.value("--ijb-set").value_or("");
    o.ijb.detector_score = !args.flag("--no-detector-score");
    o.ijb.normalise_images = args.flag("--normalise-images");
  }
  const auto pairs_out = args.value("--pairs-out");
  if (pairs_out) {
    const size_t n_sets =
        o.sets.empty() ? workspace::checkpointValidationSets(ckpt).size() : o.sets.size();
    if (n_sets != 1)
      throw Error("--pairs-out " + *pairs_out + ": writes one set's pairs, and " +
                  std::to_string(n_sets) + " sets are evaluated (name one with --bin or --ijb)");
  }
  o.workspace = scoresWorkspace(args, ckpt);
  const auto result = eval::evaluateCheckpoint(ckpt, o);
  for (const auto& set : result.sets) {
    if (!set.scores_error.empty())
      std::cerr << "msconv eval: warning: " << set.name << ": per-pair scores not kept ("
                << set.scores_error << ")\n";
    else
      std::cerr << "msconv eval: " << set.name << ": per-pair scores kept in " << set.scores_file
                << "\n";
  }
  const std::string roc_dir = args.value("--roc-dir").value_or("");
  const std::string det_dir = args.value("--det-dir").value_or("");
  nlohmann::json j;
  j["checkpoint"] = ckpt;
  j["arch"] = result.arch;
  j["op"] = result.op;
  j["sets"] = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows = {{"set", "pairs", "accuracy %", "std %",
                                                 "VAL@1e-3 %", "XNorm", "AUC %", "EER %",
                                                 "TAR@FAR %"}};
  for (const auto& set : result.sets) {
    nlohmann::json s = {{"name", set.name}, {"path", set.path}};
    std::string tars;
    for (const auto& [f, tar] : set.tarAtFar()) tars += farName(f) + ":" + pct(tar) + " ";
    const auto& scores = set.is_ijb ? set.ijb_scores : set.pairs.score;
    const auto& labels = set.is_ijb ? set.ijb_labels : set.pairs.issame;
    eval::Det det;
    detJson(set.roc(), scores, labels, far, s, det);
    if (set.is_ijb) {
      const auto& r = set.ijb;
      s.update({{"kind", "ijb"},
                {"faces", r.faces},
                {"templates", r.templates},
                {"pairs", r.pairs},
                {"embed_seconds", r.embed_seconds},
                {"score_seconds", r.score_seconds}});
      rows.push_back({set.name, std::to_string(r.pairs), "-", "-", "-", "-", pct(r.roc.auc),
                      pct(det.eer), tars});
    } else {
      const auto& r = set.pairs;
      s.update({{"kind", "pairs"},
                {"pairs", r.pairs},
                {"accuracy", r.accuracy},
                {"accuracy_std", r.accuracy_std},
                {"val", r.val},
                {"val_std", r.val_std},
                {"far", r.far},
                {"xnorm", r.xnorm},
                {"threshold", r.threshold}});
      char xn[32];
      std::snprintf(xn, sizeof xn, "%.2f", r.xnorm);
      rows.push_back({set.name, std::to_string(r.pairs), pct(r.accuracy), pct(r.accuracy_std),
                      pct(r.val), xn, pct(r.roc.auc), pct(det.eer), tars});
    }
    s.update(rocJson(set.roc()));
    writeRocCsv(roc_dir, set.name, set.roc(), s);
    if (!det_dir.empty()) {
      fs::create_directories(det_dir);
      const std::string path = (fs::path(det_dir) / (set.name + ".det.csv")).string();
      writeFileAtomically(path, detCsv(det));
      s["det_csv"] = path;
    }
    if (pairs_out) {
      eval::writePairsCsv(*pairs_out, eval::pairScoresOf(set, ckpt));
      s["pairs_csv"] = *pairs_out;
    }
    j["sets"].push_back(s);
  }
  if (args.flag("--json"))
    std::cout << j.dump(1) << "\n";
  else
    printTable(rows);
  return 0;
}

int cmdCompare(const Argv& argv) {
  Args args(argv, {
                      {"--workspace", true, "workspace of the runs (default ./runs)"},
                      {"--bin", true, "evaluate every model on this .bin too (repeatable)"},
                      {"--format", true, "text, csv or json (text)"},
                      {"--training-graph", false,
                       "embed with the models as trained, not their inference form"},
                      {"--output", true, "write here instead of stdout", "-o"},
                      {"--help", false, "this help"},
                  });
  if (args.flag("--help") || args.positionals().empty()) {
    std::cout << "usage: msconv compare RUN_OR_CKPT... [--workspace DIR] [--bin FILE]... "
                 "[--format text|csv|json] [-o FILE]\n"
              << args.usage();
    return args.positionals().empty() && !args.flag("--help") ? 2 : 0;
  }
  const std::string format = args.value("--format").value_or("text");
  if (format != "text" && format != "csv" && format != "json")
    throw Error("--format: '" + format + "' is not text, csv or json");
  const workspace::Workspace ws(args.value("--workspace").value_or(workspace::kDefaultWorkspace));
  std::unique_ptr<store::RunStore> db;
  std::optional<workspace::Workspace> db_ws;  // the workspace `db` belongs to
  nlohmann::json models = nlohmann::json::array();
  std::vector<std::string> metric_keys;  // union, in first-seen order
  for (const auto& item : args.positionals()) {
    nlohmann::json m;
    std::string ckpt;
    std::optional<store::RunRow> run;
    if (fs::is_regular_file(item)) {
      ckpt = item;
      if (const auto w = workspace::Workspace::ofCheckpoint(item)) {
        auto s = w->openStore();
        run = s->findRun(fs::absolute(item).parent_path().filename().string());
        if (run) db = std::move(s), db_ws = w;
      }
    } else {
      if (!db || db_ws->root() != ws.root()) db = ws.openExistingStore(), db_ws = ws;
      run = db->findRun(item);
      if (!run)
        throw Error("compare: '" + item + "' is neither a checkpoint nor a run in " + db->path());
      ckpt = ws.runCheckpoint(run->name);
      if (ckpt.empty())  // loading it names the missing file
        ckpt = ws.runFile(run->name, workspace::RunFile::kLastCheckpoint);
    }
    m["name"] = run ? run->name : fs::path(item).stem().string();
    std::map<std::string, double> metrics;
    if (run) {
      // Training speed (median logged samples/s) and the validation of best.ckpt, from the store.
      const auto summary = eval::summariseRun(*db, *run, *db_ws);
      m["status"] = store::statusName(summary.status);
      if (summary.samples_per_s >= 0) m["train_samples_per_s"] = summary.samples_per_s;
      // Which validation the metrics are: best.ckpt's (what `msconv eval RUN` evaluates). A
      // checkpoint file other than the run's best.ckpt gets none of them: they are not its numbers.
      std::error_code ec;
      const bool is_best =
          !fs::is_regular_file(item) ||
          (summary.metrics_of_best &&
           fs::equivalent(item, db_ws->runFile(run->name, workspace::RunFile::kBestCheckpoint),
                          ec));
      if (is_best) metrics = summary.metrics;
      if (is_best && summary.metrics_step >= 0) {
        m["validation_step"] = summary.metrics_step;
        m["validation_of"] = summary.metrics_of_best ? "best.ckpt" : "last validation";
      }
    }
    std::shared_ptr<nn::BackboneImpl> model;
    if (fs::exists(ckpt)) {
      auto loaded = model::loadModel(ckpt);
      model = loaded.model;
      m["checkpoint"] = ckpt;
    } else if (run) {
      model = nn::makeBackbone(run->arch, run->op);
    } else {
      throw Error("compare: " + ckpt + " does not exist");
    }
    const auto cost = eval::modelCost(*model);
    m["arch"] = cost.arch;
    m["op"] = cost.op;
    m["params_m"] = cost.params_m;
    if (!std::isnan(cost.gmacs)) m["gmacs"] = cost.gmacs;  // an ONNX file's are not measured
    for (const auto& [k, v] :
         eval::pairSetMetrics(*model, args.values("--bin"), 64, args.flag("--training-graph")))
      metrics[k] = v;
    for (const auto& [k, v] : metrics) {
      m["metrics"][k] = v;
      if (std::find(metric_keys.begin(), metric_keys.end(), k) == metric_keys.end())
        metric_keys.push_back(k);
    }
    models.push_back(m);
  }
  std::ostringstream out;
  if (format == "json") {
    out << models.dump(1) << "\n";
  } else {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> head = {"model",    "operator",        "params (M)",
                                     "MACs (G)", "train samples/s", "validation"};
    for (const auto& k : metric_keys) head.push_back(k + " %");
    rows.push_back(head);
    for (const auto& m : models) {
      char p[32], g[32], sp[32];
      std::snprintf(p, sizeof p, "%.3f", m["params_m"].get<double>());
      if (m.contains("gmacs"))
        std::snprintf(g, sizeof g, "%.4f", m["gmacs"].get<double>());
      else
        std::snprintf(g, sizeof g, "-");
      if (m.contains("train_samples_per_s"))
        std::snprintf(sp, sizeof sp, "%.1f", m["train_samples_per_s"].get<double>());
      else
        std::snprintf(sp, sizeof sp, "-");
      // Which checkpoint the run's metrics are: best.ckpt's validation, as `msconv eval` of the
      // run evaluates it (a checkpoint file evaluated here with --bin: "-").
      std::string val = "-";
      if (m.contains("validation_step"))
        val = m["validation_of"].get<std::string>() + " step " +
              std::to_string(m["validation_step"].get<int64_t>());
      std::vector<std::string> row = {m["name"], m["op"], p, g, sp, val};
      for (const auto& k : metric_keys)
        row.push_back(m.contains("metrics") && m["metrics"].contains(k)
                          ? pct(m["metrics"][k].get<double>())
                          : "-");
      rows.push_back(row);
    }
    if (format == "csv") {
      for (const auto& r : rows) {
        for (size_t i = 0; i < r.size(); ++i) out << (i ? "," : "") << r[i];
        out << "\n";
      }
    } else {
      std::streambuf* old = std::cout.rdbuf(out.rdbuf());
      printTable(rows);
      std::cout.rdbuf(old);
    }
  }
  if (auto path = args.value("--output")) {
    writeFileAtomically(*path, out.str());
    std::cout << *path << "\n";
  } else {
    std::cout << out.str();
  }
  return 0;
}

namespace {

// What a failures row shows of a pair's two faces: a .bin's image indices, or an IJB pair's
// templates with their media and image files.
struct FaceIndex {
  const data::IjbSet* ijb = nullptr;
  std::map<int64_t, std::vector<size_t>> faces_of;  // template id -> face indices

  nlohmann::json side(const eval::PairScores& s, int64_t pair, int which) const {
    if (!ijb) return {{"image", 2 * pair + which}};
    const int64_t t = which == 0 ? s.t1.at(pair) : s.t2.at(pair);
    nlohmann::json j = {
        {"template", t}, {"media", nlohmann::json::array()}, {"images", nlohmann::json::array()}};
    const auto it = faces_of.find(t);
    if (it != faces_of.end())
      for (size_t f : it->second) {
        const auto& face = ijb->faces[f];
        if (std::find(j["media"].begin(), j["media"].end(), face.media_id) == j["media"].end())
          j["media"].push_back(face.media_id);
        j["images"].push_back(ijb->imagePath(face));
      }
    return j;
  }

  std::string text(const eval::PairScores& s, int64_t pair, int which) const {
    if (!ijb) return std::to_string(2 * pair + which);
    const auto j = side(s, pair, which);
    std::string out = "t" + std::to_string(j["template"].get<int64_t>()) + " (" +
                      std::to_string(j["media"].size()) + " media, " +
                      std::to_string(j["images"].size()) + " images";
    if (!j["images"].empty())
      out += ": " + fs::path(j["images"][0].get<std::string>()).filename().string() +
             (j["images"].size() > 1 ? " ..." : "");
    return out + ")";
  }
};

std::string fixedText(double v, const char* f = "%.6f") {
  char b[40];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

int cmdFailures(const Argv& argv) {
  Args args(
      argv,
      {
          {"--checkpoint", true, "a model: checkpoint file or run (repeatable; A, B, ...)"},
          {"--pairs", true, "a model by its per-pair CSV (msconv eval --pairs-out; repeatable)"},
          {"--workspace", true, "where scores are kept (default: the run's, else ./runs)"},
          {"--bin", true, "the pair set (.bin)"},
          {"--ijb", true, "the IJB-B/C root (meta/, loose_crop/)"},
          {"--ijb-set", true, "ijbc or ijbb (default: the one under meta/)"},
          {"--no-detector-score", false, "IJB: do not weight images by detector score"},
          {"--normalise-images", false, "IJB: L2-normalise each image first"},
          {"--far", true, "operating point: the threshold at this FAR (1e-3)"},
          {"--threshold-from-folds", false, "operating point: the 10-fold thresholds (.bin)"},
          {"--top", true, "rows per kind, largest margin first (20)"},
          {"--batch", true, "images per forward pass (64)"},
          {"--training-graph", false,
           "embed with the model as trained, not its inference form (BatchNorm folded)"},
          {"--json", false, "print one JSON document"},
          {"--help", false, "this help"},
      });
  if (args.flag("--help")) {
    std::cout
        << "usage: msconv failures --checkpoint A [--checkpoint B ...] [--pairs FILE.csv ...] "
           "--bin SET | --ijb DIR [--far F | --threshold-from-folds] [--top K] [--json] "
           "[--workspace DIR]\n"
           "One model: its false accepts and false rejects at the operating point. Two or more "
           "(the --checkpoint ones in order, then the --pairs files): the pairs where A is right "
           "and B wrong, and the reverse; every model's score and decision. Sorted by margin "
           "(how far past its threshold the wrong decision is). Scores kept by an earlier "
           "evaluation are read, not computed again.\n"
        << args.usage();
    return 0;
  }
  const auto bin = args.value("--bin"), ijb_root = args.value("--ijb");
  if (bin.has_value() == ijb_root.has_value())
    throw Error("failures: give the set as --bin FILE or --ijb DIR (one of them)");
  const std::string set_path = bin ? *bin : *ijb_root;
  if (args.values("--checkpoint").empty() && args.values("--pairs").empty())
    throw Error("failures: no model (--checkpoint or --pairs)");
  if (args.flag("--threshold-from-folds") && args.value("--far"))
    throw Error("failures: --far and --threshold-from-folds are two operating points; give one");
  eval::OperatingPoint op;
  op.from_folds = args.flag("--threshold-from-folds");
  op.far = farOption(args);
  if (op.from_folds && ijb_root)
    throw Error(
        "failures: --threshold-from-folds is the 10-fold protocol of pair sets (.bin); "
        "use --far for IJB");
  const int top = args.integer("--top", 20);
  if (top < 0) throw Error("--top: wants a count, got " + std::to_string(top));
  eval::EvaluateOptions o;
  o.batch = args.integer("--batch", 64);
  o.training_graph = args.flag("--training-graph");
  o.ijb_set = args.value("--ijb-set").value_or("");
  o.ijb.detector_score = !args.flag("--no-detector-score");
  o.ijb.normalise_images = args.flag("--normalise-images");

  // The set's labels (and for IJB its faces), which every model's scores must match.
  std::vector<uint8_t> labels;
  data::IjbSet ijb_set;
  FaceIndex faces;
  if (ijb_root) {
    ijb_set = data::readIjb(*ijb_root, o.ijb_set);
    for (const auto& p : ijb_set.pairs) labels.push_back(p.label != 0);
    faces.ijb = &ijb_set;
    for (size_t i = 0; i < ijb_set.faces.size(); ++i)
      faces.faces_of[ijb_set.faces[i].template_id].push_back(i);
  } else {
    labels = data::readPairsBin(*bin).issame;
  }
  std::vector<eval::PairScores> models;
  std::vector<std::string> names;
  for (const auto& item : args.values("--checkpoint")) {
    const std::string ckpt = resolveCheckpoint(args, item);
    o.workspace = scoresWorkspace(args, ckpt);
    bool computed = false;
    std::string file;
    auto s = eval::keptPairScores(ckpt, set_path, o, &computed, &file);
    std::cerr << "msconv failures: " << ckpt << ": scores "
              << (!computed      ? "read from the workspace (" + file + ")"
                  : file.empty() ? "computed on " + set_path + " (not kept: the write failed)"
                                 : "computed on " + set_path + " and kept in " + file)
              << "\n";
    eval::checkSameSet(s, labels, file.empty() ? ckpt : file);
    models.push_back(std::move(s));
    names.push_back(item);
  }
  for (const auto& file : args.values("--pairs")) {
    auto s = eval::readPairsCsv(file);
    eval::checkSameSet(s, labels, file);
    if (ijb_root && (s.t1.size() != labels.size()))
      throw Error(file + ": not an IJB pairs file (no template columns)");
    for (size_t i = 0; ijb_root && i < labels.size(); ++i)
      if (s.t1[i] != ijb_set.pairs[i].t1 || s.t2[i] != ijb_set.pairs[i].t2)
        throw Error(file + ": pair " + std::to_string(i) + " is of templates " +
                    std::to_string(s.t1[i]) + " and " + std::to_string(s.t2[i]) +
                    ", the set's of " + std::to_string(ijb_set.pairs[i].t1) + " and " +
                    std::to_string(ijb_set.pairs[i].t2) + " (a pairs file of another set?)");
    s.is_ijb = ijb_root.has_value();
    s.checkpoint = file;
    std::cerr << "msconv failures: " << file << ": scores read from the pairs file\n";
    models.push_back(std::move(s));
    names.push_back(file);
  }
  std::vector<const eval::PairScores*> ptrs;
  for (const auto& m : models) ptrs.push_back(&m);
  const auto list = eval::listFailures(ptrs, op, top);

  nlohmann::json j;
  j["set"] = set_path;
  j["pairs"] = labels.size();
  j["operating_point"] =
      op.from_folds ? nlohmann::json("10-fold thresholds") : nlohmann::json({{"far", op.far}});
  j["models"] = nlohmann::json::array();
  for (size_t m = 0; m < models.size(); ++m)
    j["models"].push_back(
        {{"name", names[m]},
         {"checkpoint", models[m].checkpoint},
         {"threshold", std::isnan(list.thresholds[m]) ? nlohmann::json(nullptr)
                                                      : nlohmann::json(list.thresholds[m])}});
  j["false_accepts"] = list.false_accepts;
  j["false_rejects"] = list.false_rejects;
  if (models.size() > 1) {
    j["a_right_b_wrong"] = list.only_first_right;
    j["a_wrong_b_right"] = list.only_second_right;
  }
  j["rows"] = nlohmann::json::array();
  for (const auto& r : list.rows) {
    nlohmann::json row = {{"pair", r.pair},
                          {"kind", eval::failureKindName(r.kind)},
                          {"genuine", labels[r.pair] != 0},
                          {"margin", r.margin},
                          {"first", faces.side(models[0], r.pair, 0)},
                          {"second", faces.side(models[0], r.pair, 1)},
                          {"scores", r.scores},
                          {"accepted", nlohmann::json::array()}};
    for (uint8_t a : r.accepted) row["accepted"].push_back(a != 0);
    j["rows"].push_back(row);
  }
  if (args.flag("--json")) {
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  std::cout << set_path << ": " << labels.size() << " pairs; operating point: "
            << (op.from_folds ? std::string("10-fold thresholds")
                              : "FAR " + fixedText(op.far, "%g"))
            << "\n";
  for (size_t m = 0; m < models.size(); ++m)
    std::cout << "  " << char('A' + std::min<size_t>(m, 25)) << " = " << names[m]
              << (std::isnan(list.thresholds[m]) ? ""
                                                 : "  threshold " + fixedText(list.thresholds[m]))
              << "\n";
  if (models.size() == 1)
    std::cout << list.false_accepts << " false accepts, " << list.false_rejects
              << " false rejects\n\n";
  else
    std::cout << "A (" << list.false_accepts << " false accepts, " << list.false_rejects
              << " false rejects); A right, B wrong: " << list.only_first_right
              << "; A wrong, B right: " << list.only_second_right << "\n\n";
  std::vector<std::string> head = {"pair", "kind", "label", "margin", "face 1", "face 2"};
  for (size_t m = 0; m < models.size(); ++m) {
    const std::string n(1, char('A' + std::min<size_t>(m, 25)));
    head.push_back(n + " score");
    head.push_back(n);
  }
  std::vector<std::vector<std::string>> rows = {head};
  for (const auto& r : list.rows) {
    std::vector<std::string> row = {std::to_string(r.pair),
                                    eval::failureKindName(r.kind),
                                    labels[r.pair] ? "genuine" : "impostor",
                                    fixedText(r.margin),
                                    faces.text(models[0], r.pair, 0),
                                    faces.text(models[0], r.pair, 1)};
    for (size_t m = 0; m < models.size(); ++m) {
      row.push_back(fixedText(r.scores[m]));
      row.push_back(r.accepted[m] ? "accept" : "reject");
    }
    rows.push_back(row);
  }
  printTable(rows);
  return 0;
}

}  // namespace msconv::cli
