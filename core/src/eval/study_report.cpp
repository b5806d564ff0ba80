#include "msconv/eval/study_report.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "msconv/atomic_file.h"
#include "msconv/error.h"
#include "msconv/eval/compare.h"
#include "msconv/eval/evaluate.h"
#include "msconv/eval/metric_name.h"
#include "msconv/eval/roc.h"
#include "msconv/stats/stats.h"
#include "msconv/store/run_store.h"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace msconv::eval {
namespace {

// One run's evaluation of its checkpoint: the named metrics and, per pair set, what the
// within-seed tests need (each pair's distance, score and label, and the model's threshold).
struct PairData {
  std::string set;
  double threshold = 0;
  std::vector<double> dist, fars;
  std::vector<float> score;
  std::vector<uint8_t> issame;
};
struct RunEval {
  std::string checkpoint;
  std::vector<std::pair<std::string, double>> metrics;  // in the document's order
  std::vector<PairData> sets;
  std::vector<std::pair<std::string, double>> extra;  // StudyReportOptions::extra_metrics
  std::string extra_key;
};

ojson num(double v) {
  return std::isfinite(v) ? ojson(v) : ojson(nullptr);
}

std::string fileKey(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

ojson toJson(const RunEval& e, const std::string& key) {
  ojson j;
  j["checkpoint"] = e.checkpoint;
  j["key"] = key;
  j["metrics"] = ojson::array();
  for (const auto& [k, v] : e.metrics) j["metrics"].push_back({k, v});
  if (!e.extra_key.empty()) {
    j["extra_key"] = e.extra_key;
    j["extra"] = ojson::array();
    for (const auto& [k, v] : e.extra) j["extra"].push_back({k, num(v)});
  }
  for (const auto& p : e.sets)
    j["sets"].push_back({{"set", p.set},
                         {"threshold", p.threshold},
                         {"fars", p.fars},
                         {"dist", p.dist},
                         {"score", p.score},
                         {"issame", p.issame}});
  return j;
}

RunEval fromJson(const ojson& j) {
  RunEval e;
  e.checkpoint = j.at("checkpoint").get<std::string>();
  for (const auto& m : j.at("metrics")) e.metrics.emplace_back(m[0].get<std::string>(), m[1]);
  if (j.contains("extra_key")) {
    e.extra_key = j["extra_key"].get<std::string>();
    for (const auto& m : j.at("extra"))
      e.extra.emplace_back(m[0].get<std::string>(),
                           m[1].is_number() ? m[1].get<double>() : std::nan(""));
  }
  if (j.contains("sets"))
    for (const auto& s : j["sets"]) {
      PairData p;
      p.set = s.at("set");
      p.threshold = s.at("threshold");
      p.fars = s.at("fars").get<std::vector<double>>();
      p.dist = s.at("dist").get<std::vector<double>>();
      p.score = s.at("score").get<std::vector<float>>();
      p.issame = s.at("issame").get<std::vector<uint8_t>>();
      e.sets.push_back(std::move(p));
    }
  return e;
}

// The run's checkpoint evaluated as `msconv eval` evaluates it, cached beside the run.
RunEval evaluateRun(const workspace::Workspace& ws, const std::string& run,
                    const std::string& which, const StudyReportOptions& o) {
  const std::string ckpt = ws.runFile(run, which == "last" ? workspace::RunFile::kLastCheckpoint
                                                           : workspace::RunFile::kBestCheckpoint);
  if (!fs::exists(ckpt)) throw Error("no " + which + " checkpoint (" + ckpt + ")");
  const std::string cache = ws.runDir(run) + "/study-eval-" + which + ".json";
  const std::string key = fileKey(ckpt);
  // The extra metrics, computed when the cache lacks them for o.extra_key.
  auto withExtra = [&](RunEval e, bool cached) {
    if (o.extra_metrics && e.extra_key != o.extra_key) {
      if (o.progress) o.progress(run + ": further metrics of " + ckpt);
      e.extra = o.extra_metrics(ckpt);
      e.extra_key = o.extra_key;
      writeFileAtomically(cache, toJson(e, key).dump() + "\n");
    } else if (cached && o.progress) {
      o.progress(run + ": " + which + " checkpoint evaluated before (cached)");
    }
    if (o.extra_metrics) e.metrics.insert(e.metrics.end(), e.extra.begin(), e.extra.end());
    return e;
  };
  if (std::ifstream in{cache}) {
    try {
      const auto j = ojson::parse(in);
      if (j.at("key") == key) return withExtra(fromJson(j), true);
    } catch (const std::exception&) {  // unreadable: evaluated again and replaced
    }
  }
  if (o.progress) o.progress(run + ": evaluating " + ckpt);
  RunEval e;
  e.checkpoint = ckpt;
  const auto ev = evaluateCheckpoint(ckpt, {});
  for (const auto& s : ev.sets) {
    if (s.is_ijb) continue;
    const std::string set = fs::path(s.path).filename().string();
    for (const auto& [name, v] : verificationMetrics(set, s.pairs))
      if (name.kind == MetricName::Kind::kAccuracy || name.kind == MetricName::Kind::kTarAtFar ||
          name.kind == MetricName::Kind::kAuc)
        e.metrics.emplace_back(name.label(), v);
    PairData p;
    p.set = set;
    p.threshold = s.pairs.threshold;
    for (const auto& [far, tar] : s.pairs.tar_at_far) p.fars.push_back(far);
    p.dist = s.pairs.dist;
    p.score = s.pairs.score;
    p.issame = s.pairs.issame;
    e.sets.push_back(std::move(p));
  }
  writeFileAtomically(cache, toJson(e, key).dump() + "\n");
  return withExtra(std::move(e), false);
}

ojson interval(double lo, double hi) {
  return ojson::array({num(lo), num(hi)});
}

// TAR at `far` over the pairs `idx` (with repeats), as computeRoc reads it; NaN when the
// resample lacks one of the classes.
double tarAt(const PairData& p, const std::vector<uint32_t>& idx, double far) {
  std::vector<float> scores(idx.size());
  std::vector<uint8_t> labels(idx.size());
  bool g = false, i = false;
  for (size_t k = 0; k < idx.size(); ++k) {
    scores[k] = p.score[idx[k]];
    labels[k] = p.issame[idx[k]];
    (labels[k] ? g : i) = true;
  }
  if (!g || !i) return std::nan("");
  const auto roc =
      computeRoc(scores.data(), labels.data(), static_cast<int64_t>(scores.size()), {far}, p.set);
  return roc.tar_at_far.empty() ? std::nan("") : roc.tar_at_far[0].second;
}

std::string pct(double v, int digits = 2) {
  if (!std::isfinite(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, 100 * v);
  return b;
}

std::string pval(double p) {
  if (!std::isfinite(p)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, p < 1e-4 ? "%.1e" : "%.4f", p);
  return b;
}

bool isCost(const std::string& metric) {
  return metric == "params_m" || metric == "gmacs" || metric == "train_samples_per_s";
}

std::string fmtValue(const std::string& metric, double v) {
  if (!std::isfinite(v)) return "-";
  char b[32];
  if (metric == "params_m" || metric == "gmacs")
    std::snprintf(b, sizeof b, "%.3f", v);
  else if (isFaithfulnessLabel(metric))  // cosine AUCs and ROAD differences; drop in percent
    std::snprintf(b, sizeof b, lowerIsBetter(metric) && metric.back() == 'p' ? "%.2f" : "%.4f", v);
  else if (metric == "train_samples_per_s")
    std::snprintf(b, sizeof b, "%.1f", v);
  else
    return pct(v);
  return b;
}

double get(const ojson& j) {
  return j.is_number() ? j.get<double>() : std::nan("");
}

}  // namespace

std::string studyReport(const workspace::Workspace& ws, const study::Study& s,
                        const StudyReportOptions& o) {
  const auto cells = study::expand(s, o.overrides);
  const auto runs = study::cellRuns(s, cells, ws);
  const auto db = ws.openStore();
  const size_t nseeds = s.seeds.size();
  // evals[cell][seed]
  std::vector<std::vector<std::optional<RunEval>>> evals(
      cells.size(), std::vector<std::optional<RunEval>>(nseeds));
  std::vector<std::vector<std::map<std::string, double>>> costs(
      cells.size(), std::vector<std::map<std::string, double>>(nseeds));
  ojson doc;
  doc["study"] = s.name;
  doc["checkpoint"] = s.checkpoint;
  doc["excluded"] = ojson::array();
  size_t ref = 0;
  for (size_t c = 0; c < cells.size(); ++c)
    if (cells[c].reference) ref = c;
  doc["reference"] = cells[ref].id;
  std::vector<std::string> metric_order;
  auto addMetric = [&](const std::string& m) {
    if (std::find(metric_order.begin(), metric_order.end(), m) == metric_order.end())
      metric_order.push_back(m);
  };
  ojson jcells = ojson::array();
  for (size_t c = 0; c < cells.size(); ++c) {
    ojson jc;
    jc["id"] = cells[c].id;
    jc["axes"] = ojson::object();
    for (const auto& [k, v] : cells[c].axes) jc["axes"][k] = v;
    jc["reference"] = cells[c].reference;
    jc["runs"] = ojson::array();
    for (size_t k = 0; k < nseeds; ++k) {
      const auto& r = runs[c * nseeds + k];
      ojson jr{{"run", r.run}, {"seed", r.seed}, {"status", r.statusText()}, {"step", r.step}};
      std::string reason;
      if (!r.exists)
        reason = "not trained yet";
      else if (r.row.status == store::RunStatus::kFailed)
        reason = "failed: " + (r.error.empty() ? std::string("(no error recorded)") : r.error);
      else if (r.row.status != store::RunStatus::kDone)
        reason = std::string(store::statusName(r.row.status)) + " (not finished)";
      if (reason.empty()) {
        try {
          evals[c][k] = evaluateRun(ws, r.run, s.checkpoint, o);
          jr["checkpoint"] = evals[c][k]->checkpoint;
          const auto sum = summariseRun(*db, r.row, ws);
          costs[c][k] = {{"params_m", sum.params_m}, {"gmacs", sum.gmacs}};
          if (sum.samples_per_s >= 0) costs[c][k]["train_samples_per_s"] = sum.samples_per_s;
          for (const auto& [m, v] : evals[c][k]->metrics) addMetric(m);
        } catch (const std::exception& e) {  // msconv::Error, or LibTorch's on a bad file
          reason = std::string("cannot be evaluated: ") + e.what();
          evals[c][k].reset();
        }
      }
      if (!reason.empty()) {
        jr["excluded"] = reason;
        doc["excluded"].push_back(
            {{"run", r.run}, {"cell", cells[c].id}, {"seed", r.seed}, {"reason", reason}});
      }
      jc["runs"].push_back(jr);
    }
    jcells.push_back(jc);
  }
  const size_t quality = metric_order.size();
  for (const char* m : {"params_m", "gmacs", "train_samples_per_s"}) addMetric(m);

  // values[cell][metric][seed]
  auto value = [&](size_t c, const std::string& m, size_t k) {
    if (!evals[c][k]) return std::nan("");
    if (isCost(m)) {
      const auto it = costs[c][k].find(m);
      return it == costs[c][k].end() ? std::nan("") : it->second;
    }
    for (const auto& [name, v] : evals[c][k]->metrics)
      if (name == m) return v;
    return std::nan("");
  };
  for (size_t c = 0; c < cells.size(); ++c) {
    ojson jm = ojson::object();
    for (const auto& m : metric_order) {
      std::vector<double> present;
      ojson values = ojson::array();
      for (size_t k = 0; k < nseeds; ++k) {
        const double v = value(c, m, k);
        values.push_back(num(v));
        if (std::isfinite(v)) present.push_back(v);
      }
      const auto sum = stats::summarise(present);
      jm[m] = {{"values", values},
               {"n", sum.n},
               {"mean", num(sum.mean)},
               {"std", num(sum.std)},
               {"ci95", interval(sum.ci_lo, sum.ci_hi)}};
    }
    jcells[c]["metrics"] = jm;
  }
  doc["cells"] = jcells;

  // Each cell against the reference, paired by seed; Holm over the cells, per metric.
  ojson comparisons = ojson::array();
  for (size_t mi = 0; mi < quality; ++mi) {
    const std::string& m = metric_order[mi];
    std::vector<ojson> rows;
    std::vector<double> ps;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c == ref) continue;
      std::vector<double> a, b;
      for (size_t k = 0; k < nseeds; ++k) {
        const double x = value(c, m, k), y = value(ref, m, k);
        if (std::isfinite(x) && std::isfinite(y)) a.push_back(x), b.push_back(y);
      }
      ojson row{{"cell", cells[c].id}, {"metric", m}, {"n", a.size()}};
      double p = std::nan("");
      if (a.size() >= 2) {
        const auto t = stats::pairedT(a, b);
        row["diff"] = num(t.diff);
        row["ci95"] = interval(t.ci_lo, t.ci_hi);
        row["t"] = num(t.t);
        row["p_t"] = num(t.p);
        p = t.p;
      } else {
        double d = a.empty() ? std::nan("") : a[0] - b[0];
        row["diff"] = num(d);
        row["ci95"] = interval(std::nan(""), std::nan(""));
        row["t"] = nullptr;
        row["p_t"] = nullptr;
      }
      row["p_wilcoxon"] = a.size() >= 6 ? num(stats::wilcoxonSignedRank(a, b).p) : ojson(nullptr);
      ps.push_back(p);
      rows.push_back(row);
    }
    const auto adj = stats::holm(ps);
    for (size_t i = 0; i < rows.size(); ++i) {
      rows[i]["p_holm"] = num(adj[i]);
      rows[i]["significant"] = std::isfinite(adj[i]) && adj[i] < o.alpha;
      comparisons.push_back(rows[i]);
    }
  }
  doc["comparisons"] = comparisons;

  // Within a seed, on the same pairs: McNemar on the decisions at each model's own threshold
  // (Holm over the cells, per seed and set), and a paired bootstrap of the TAR@FAR difference.
  ojson within = ojson::array();
  for (size_t k = 0; k < nseeds; ++k) {
    std::map<std::string, std::vector<size_t>> family;  // set -> rows
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c == ref || !evals[c][k] || !evals[ref][k]) continue;
      for (const auto& pa : evals[c][k]->sets) {
        const auto pb = std::find_if(evals[ref][k]->sets.begin(), evals[ref][k]->sets.end(),
                                     [&](const PairData& x) { return x.set == pa.set; });
        if (pb == evals[ref][k]->sets.end() || pb->issame != pa.issame) continue;
        const size_t n = pa.issame.size();
        std::vector<bool> ca(n), cb(n);
        for (size_t i = 0; i < n; ++i) {
          ca[i] = (pa.dist[i] < pa.threshold) == (pa.issame[i] != 0);
          cb[i] = (pb->dist[i] < pb->threshold) == (pb->issame[i] != 0);
        }
        const auto mc = stats::mcnemarExact(ca, cb);
        ojson row{{"cell", cells[c].id},
                  {"seed", s.seeds[k]},
                  {"set", pa.set},
                  {"mcnemar", {{"b", mc.b}, {"c", mc.c}, {"p", mc.p}}}};
        row["tar_diff"] = ojson::array();
        for (double far : pa.fars) {
          if (std::find(pb->fars.begin(), pb->fars.end(), far) == pb->fars.end()) continue;
          const auto iv = stats::pairedBootstrap(
              n,
              [&](const std::vector<uint32_t>& idx) {
                return tarAt(pa, idx, far) - tarAt(*pb, idx, far);
              },
              o.bootstrap, o.bootstrap_seed + s.seeds[k]);
          row["tar_diff"].push_back(
              {{"far", far}, {"diff", num(iv.estimate)}, {"ci95", interval(iv.lo, iv.hi)}});
        }
        family[pa.set].push_back(within.size());
        within.push_back(row);
      }
    }
    for (const auto& [set, idx] : family) {
      std::vector<double> ps;
      for (size_t i : idx) ps.push_back(within[i]["mcnemar"]["p"].get<double>());
      const auto adj = stats::holm(ps);
      for (size_t i = 0; i < idx.size(); ++i) within[idx[i]]["mcnemar"]["p_holm"] = num(adj[i]);
    }
  }
  doc["within_seed"] = within;

  // In words.
  ojson words = ojson::array();
  std::vector<std::string> sig, nonsig, untested;
  for (const auto& c : comparisons) {
    const std::string m = c["metric"];
    if (m.find("/accuracy") == std::string::npos && m.find("/tar@far") == std::string::npos)
      continue;  // AUC is in the tables; the sentences keep to accuracy and TAR@FAR
    const double d = get(c["diff"]);
    std::string line =
        c["cell"].get<std::string>() + " " + m + " " + (d >= 0 ? "+" : "") + pct(d) + " points";
    if (c["p_t"].is_null()) {
      untested.push_back(line + " (n = " + std::to_string(c["n"].get<int>()) + ")");
      continue;
    }
    line += " (95 % CI " + pct(get(c["ci95"][0])) + " to " + pct(get(c["ci95"][1])) +
            ", p = " + pval(get(c["p_t"])) + ", Holm " + pval(get(c["p_holm"])) + ")";
    (c["significant"].get<bool>() ? sig : nonsig).push_back(line);
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : "; ") + x;
    return out;
  };
  const std::string vs = " against " + cells[ref].id +
                         ", paired over seeds, paired t-test, Holm-corrected across cells";
  if (!sig.empty())
    words.push_back("Significant at 0.05" + vs + ": " + join(sig) + ".");
  else if (!nonsig.empty())
    words.push_back("No difference is significant at 0.05" + vs + ".");
  if (!nonsig.empty())
    words.push_back("Not significant (the seeds cannot tell these apart): " + join(nonsig) + ".");
  if (!untested.empty())
    words.push_back("Untested, fewer than 2 seeds with both runs finished: " + join(untested) +
                    ".");
  int mc_sig = 0, mc_all = 0;
  for (const auto& w : within) {
    ++mc_all;
    if (w["mcnemar"].contains("p_holm") && w["mcnemar"]["p_holm"].is_number() &&
        w["mcnemar"]["p_holm"].get<double>() < o.alpha)
      ++mc_sig;
  }
  if (mc_all)
    words.push_back(
        "Within a seed, on the same pairs: McNemar's exact test finds the decisions "
        "of " +
        std::to_string(mc_sig) + " of " + std::to_string(mc_all) +
        " cell-seed-set comparisons different at 0.05 (Holm across cells). These hold each "
        "trained model fixed: they say two models decide these pairs differently, not that the "
        "operators differ across training runs; that is the seeds' test above.");
  if (!doc["excluded"].empty())
    words.push_back(std::to_string(doc["excluded"].size()) +
                    " run(s) excluded from the statistics (see 'excluded').");
  doc["conclusions"] = words;
  return doc.dump(1) + "\n";
}

std::string formatStudyReport(const std::string& json, const std::string& format) {
  if (format == "json") return json;
  if (format != "text" && format != "csv" && format != "markdown" && format != "latex")
    throw Error("study report: format '" + format + "' is not text, csv, json, markdown or latex");
  const auto doc = ojson::parse(json);
  std::ostringstream out;
  std::vector<std::string> metrics;
  for (const auto& c : doc["cells"])
    for (const auto& [m, v] : c["metrics"].items())
      if (std::find(metrics.begin(), metrics.end(), m) == metrics.end()) metrics.push_back(m);
  auto cellText = [&](const ojson& c, const std::string& m) -> std::string {
    if (!c["metrics"].contains(m)) return "-";
    const auto& x = c["metrics"][m];
    const double mean = get(x["mean"]), sd = get(x["std"]);
    if (!std::isfinite(mean)) return "-";
    std::string t = fmtValue(m, mean);
    if (std::isfinite(sd)) t += (format == "latex" ? " $\\pm$ " : " +- ") + fmtValue(m, sd);
    return t;
  };
  // The best mean per quality column (highest, or lowest where lowerIsBetter) is marked.
  std::map<std::string, double> best;
  for (const auto& m : metrics) {
    if (isCost(m)) continue;
    const bool low = lowerIsBetter(m);
    double b = low ? 1e300 : -1e300;
    for (const auto& c : doc["cells"])
      if (c["metrics"].contains(m)) {
        const double v = get(c["metrics"][m]["mean"]);
        if (std::isfinite(v)) b = low ? std::min(b, v) : std::max(b, v);
      }
    best[m] = b;
  }
  auto isBest = [&](const ojson& c, const std::string& m) {
    return best.count(m) && c["metrics"].contains(m) && get(c["metrics"][m]["mean"]) == best[m];
  };
  const std::string title = "Study " + doc["study"].get<std::string>() + " (" +
                            doc["checkpoint"].get<std::string>() + " checkpoints; reference " +
                            doc["reference"].get<std::string>() + ")";
  if (format == "csv") {
    out << "cell,metric,n,mean,std,ci95_lo,ci95_hi,values\n";
    for (const auto& c : doc["cells"])
      for (const auto& [m, x] : c["metrics"].items()) {
        std::string vals;
        for (const auto& v : x["values"])
          vals += (vals.empty() ? "" : ";") + (v.is_null() ? "" : v.dump());
        out << '"' << c["id"].get<std::string>() << "\"," << m << "," << x["n"] << ","
            << (x["mean"].is_null() ? "" : x["mean"].dump()) << ","
            << (x["std"].is_null() ? "" : x["std"].dump()) << ","
            << (x["ci95"][0].is_null() ? "" : x["ci95"][0].dump()) << ","
            << (x["ci95"][1].is_null() ? "" : x["ci95"][1].dump()) << "," << vals << "\n";
      }
    out << "\ncell,metric,n,diff,ci95_lo,ci95_hi,p_t,p_holm,p_wilcoxon,significant\n";
    for (const auto& c : doc["comparisons"]) {
      auto f = [](const ojson& v) { return v.is_null() ? std::string() : v.dump(); };
      out << '"' << c["cell"].get<std::string>() << "\"," << c["metric"].get<std::string>() << ","
          << c["n"] << "," << f(c["diff"]) << "," << f(c["ci95"][0]) << "," << f(c["ci95"][1])
          << "," << f(c["p_t"]) << "," << f(c["p_holm"]) << "," << f(c["p_wilcoxon"]) << ","
          << (c["significant"].get<bool>() ? "true" : "false") << "\n";
    }
    return out.str();
  }
  // Tables: cells x metrics, then comparisons.
  std::vector<std::vector<std::string>> table;
  std::vector<std::string> head = {"cell", "n"};
  for (const auto& m : metrics)
    head.push_back(m == "params_m"              ? "params (M)"
                   : m == "gmacs"               ? "MACs (G)"
                   : m == "train_samples_per_s" ? "samples/s"
                   : isFaithfulnessLabel(m)     ? m
                                                : m + " %");
  table.push_back(head);
  for (const auto& c : doc["cells"]) {
    int n = 0;
    for (const auto& r : c["runs"]) n += !r.contains("excluded");
    std::vector<std::string> row = {
        c["id"].get<std::string>() + (c["reference"].get<bool>() ? " (ref)" : ""),
        std::to_string(n)};
    for (const auto& m : metrics) {
      std::string t = cellText(c, m);
      if (isBest(c, m))
        t = format == "markdown" ? "**" + t + "**"
            : format == "latex"  ? "\\textbf{" + t + "}"
                                 : t + " *";
      row.push_back(t);
    }
    table.push_back(row);
  }
  std::vector<std::vector<std::string>> cmp = {{"cell", "metric", "n", "diff (points)", "95 % CI",
                                                "p (t)", "p (Holm)", "p (Wilcoxon)",
                                                "significant"}};
  for (const auto& c : doc["comparisons"]) {
    const double d = get(c["diff"]);
    const std::string m = c["metric"].get<std::string>();
    // Percentage points for the accuracies, the metric's own unit for faithfulness.
    auto diffText = [&](double v) { return isFaithfulnessLabel(m) ? fmtValue(m, v) : pct(v); };
    cmp.push_back({c["cell"].get<std::string>(), m, std::to_string(c["n"].get<int>()),
                   (d >= 0 ? "+" : "") + diffText(d),
                   "[" + diffText(get(c["ci95"][0])) + ", " + diffText(get(c["ci95"][1])) + "]",
                   pval(get(c["p_t"])), pval(get(c["p_holm"])), pval(get(c["p_wilcoxon"])),
                   c["significant"].get<bool>() ? "yes" : "no"});
  }
  auto latexEscape = [](std::string t) {
    std::string o2;
    for (char ch : t) {
      if (ch == '%' || ch == '_' || ch == '&' || ch == '#') o2 += '\\';
      o2 += ch;
    }
    return o2;
  };
  auto emit = [&](const std::vector<std::vector<std::string>>& rows) {
    if (format == "markdown") {
      for (size_t i = 0; i < rows.size(); ++i) {
        out << "|";
        for (const auto& x : rows[i]) out << " " << x << " |";
        out << "\n";
        if (i == 0) {
          out << "|";
          for (size_t k = 0; k < rows[0].size(); ++k) out << (k < 2 ? " --- |" : " ---: |");
          out << "\n";
        }
      }
    } else if (format == "latex") {
      out << "\\begin{tabular}{l" << std::string(rows[0].size() - 1, 'r') << "}\n\\hline\n";
      for (size_t i = 0; i < rows.size(); ++i) {
        for (size_t k = 0; k < rows[i].size(); ++k) {
          std::string x = rows[i][k];
          if (x.find("\\textbf") == std::string::npos && x.find("$\\pm$") == std::string::npos)
            x = latexEscape(x);
          out << (k ? " & " : "") << x;
        }
        out << " \\\\\n" << (i == 0 ? "\\hline\n" : "");
      }
      out << "\\hline\n\\end{tabular}\n";
    } else {
      std::vector<size_t> w(rows[0].size(), 0);
      for (const auto& r : rows)
        for (size_t k = 0; k < r.size(); ++k) w[k] = std::max(w[k], r[k].size());
      for (const auto& r : rows) {
        for (size_t k = 0; k < r.size(); ++k) {
          std::string x = r[k];
          if (k) out << "  ";
          if (k < 1)
            out << x << std::string(w[k] - x.size(), ' ');
          else
            out << std::string(w[k] - x.size(), ' ') << x;
        }
        out << "\n";
      }
    }
  };
  if (format == "markdown")
    out << "### " << title << "\n\n";
  else if (format == "latex")
    out << "% " << title << "\n";
  else
    out << title << "\n\n";
  emit(table);
  out << (format == "latex"      ? "\n% against the reference\n"
          : format == "markdown" ? "\nAgainst the reference:\n\n"
                                 : "\nagainst the reference:\n");
  if (cmp.size() > 1) emit(cmp);
  if (format == "text" && !doc["within_seed"].empty()) {
    out << "\nwithin a seed, same pairs (McNemar exact at each model's threshold; bootstrap "
           "95 % interval of the TAR@FAR difference):\n";
    for (const auto& w : doc["within_seed"]) {
      out << "  " << w["cell"].get<std::string>() << "  seed " << w["seed"] << "  "
          << w["set"].get<std::string>() << ": b " << w["mcnemar"]["b"] << " c "
          << w["mcnemar"]["c"] << " p " << pval(get(w["mcnemar"]["p"])) << " (Holm "
          << pval(get(w["mcnemar"].value("p_holm", ojson()))) << ")";
      for (const auto& t : w["tar_diff"])
        out << "; TAR@FAR=" << MetricName::farText(t["far"].get<double>()) << " "
            << (get(t["diff"]) >= 0 ? "+" : "") << pct(get(t["diff"])) << " ["
            << pct(get(t["ci95"][0])) << ", " << pct(get(t["ci95"][1])) << "]";
      out << "\n";
    }
  }
  out << "\n";
  for (const auto& c : doc["conclusions"])
    out << (format == "latex"      ? "% "
            : format == "markdown" ? "- "
                                   : "")
        << c.get<std::string>() << "\n";
  if (format == "text" && !doc["excluded"].empty()) {
    out << "\nexcluded:\n";
    for (const auto& e : doc["excluded"])
      out << "  " << e["run"].get<std::string>() << ": " << e["reason"].get<std::string>() << "\n";
  }
  return out.str();
}

}  // namespace msconv::eval
