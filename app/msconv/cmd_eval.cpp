// msconv eval / compare: verification accuracy, VAL, TAR@FAR, ROC and AUC of a checkpoint on pair
// sets and IJB-B/C; a paper-style table comparing runs or checkpoints.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
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
#include "msconv/eval/evaluate.h"
#include "msconv/eval/ijb.h"
#include "msconv/eval/metric_name.h"
#include "msconv/eval/verification.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/complexity.h"
#include "msconv/store/run_store.h"
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
  Args args(argv,
            {
                {"--checkpoint", true, "checkpoint file, or a run of --workspace (its best)"},
                {"--workspace", true, "workspace of the runs (default ./runs)"},
                {"--bin", true, "verification .bin (repeatable; default: the run's data.val)"},
                {"--ijb", true, "IJB-B/C root (meta/, loose_crop/)"},
                {"--ijb-set", true, "ijbc or ijbb (default: the one under meta/)"},
                {"--no-detector-score", false, "IJB: do not weight images by detector score"},
                {"--normalise-images", false, "IJB: L2-normalise each image first"},
                {"--batch", true, "images per forward pass (64)"},
                {"--roc-dir", true, "write SET.roc.csv (about 2,000 log-spaced points) here"},
                {"--json", false, "print one JSON document"},
                {"--help", false, "this help"},
            });
  if (args.flag("--help")) {
    std::cout << "usage: msconv eval --checkpoint CKPT_OR_RUN [--workspace DIR] [--bin FILE]... "
                 "[--ijb DIR [--ijb-set "
                 "ijbc]] [--roc-dir DIR] [--json]\n"
              << args.usage();
    return 0;
  }
  const std::string ckpt = resolveCheckpoint(args, args.required("--checkpoint"));
  eval::EvaluateOptions o;
  o.batch = args.integer("--batch", 64);
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
  const auto result = eval::evaluateCheckpoint(ckpt, o);
  const std::string roc_dir = args.value("--roc-dir").value_or("");
  nlohmann::json j;
  j["checkpoint"] = ckpt;
  j["arch"] = result.arch;
  j["op"] = result.op;
  j["sets"] = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows = {
      {"set", "pairs", "accuracy %", "std %", "VAL@1e-3 %", "XNorm", "AUC %", "TAR@FAR %"}};
  for (const auto& set : result.sets) {
    nlohmann::json s = {{"name", set.name}, {"path", set.path}};
    std::string tars;
    for (const auto& [far, tar] : set.tarAtFar()) tars += farName(far) + ":" + pct(tar) + " ";
    if (set.is_ijb) {
      const auto& r = set.ijb;
      s.update({{"kind", "ijb"},
                {"faces", r.faces},
                {"templates", r.templates},
                {"pairs", r.pairs},
                {"embed_seconds", r.embed_seconds},
                {"score_seconds", r.score_seconds}});
      rows.push_back({set.name, std::to_string(r.pairs), "-", "-", "-", "-", pct(r.roc.auc), tars});
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
                      pct(r.val), xn, pct(r.roc.auc), tars});
    }
    s.update(rocJson(set.roc()));
    writeRocCsv(roc_dir, set.name, set.roc(), s);
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
      if (!db || db_ws->root() != ws.root()) db = ws.openStore(), db_ws = ws;
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
    m["arch"] = model->arch().name;
    m["op"] = model->op().str();
    const auto cx = nn::measureComplexity(*model, 112, 1);
    m["params_m"] = cx.params / 1e6;
    m["gmacs"] = cx.macs / 1e9;
    for (const auto& path : args.values("--bin")) {
      const auto r = eval::verifyPairs(*model, data::readPairsBin(path), 64);
      for (const auto& [name, v] : eval::verificationMetrics(fs::path(path).filename().string(), r))
        if (name.compared()) metrics[name.label()] = v;
    }
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
      std::snprintf(g, sizeof g, "%.4f", m["gmacs"].get<double>());
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

}  // namespace msconv::cli
