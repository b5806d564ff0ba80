// A study's report: every finished run evaluated on its validation sets (the checkpoint the study
// names, best or last, through evaluateCheckpoint: the numbers `msconv eval` gives for it), the
// statistics per cell across seeds, each cell against the reference cell (paired over seeds),
// and each cell against the reference within a seed on the same pairs (McNemar, bootstrap).
//
// The JSON document:
//   {"study": NAME, "reference": CELL, "checkpoint": "best",
//    "cells": [{"id", "axes": {KEY: VALUE}, "reference": bool,
//               "runs": [{"run", "seed", "status", "step", "checkpoint", "error"?}],
//               "metrics": {"val.bin/accuracy": {"values": [per seed, seed order, null when
//                           missing], "n", "mean", "std", "ci95": [lo, hi]}, ...}}],
//    "comparisons": [{"cell", "metric", "n", "diff", "ci95", "t", "p_t", "p_holm",
//                     "p_wilcoxon" (null below n 6), "significant"}],
//    "within_seed": [{"cell", "seed", "set", "mcnemar": {"b", "c", "p", "p_holm"},
//                     "tar_diff": [{"far", "diff", "ci95"}]}],
//    "excluded": [{"run", "cell", "seed", "reason"}],
//    "conclusions": ["...", ...]}
// Metrics: per set accuracy, TAR@FAR at each reported FAR and the cosine ROC's AUC (and, with
// StudyReportOptions::extra_metrics, CAM faithfulness: SET/faith.METHOD.METRIC); per cell
// params_m, gmacs and train_samples_per_s (median logged). Comparisons cover the per-set metrics;
// Holm's correction runs over the cells compared, per metric. Significant: p_holm < 0.05.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "msconv/study/study.h"
#include "msconv/workspace/workspace.h"

namespace msconv::eval {

struct StudyReportOptions {
  std::vector<std::string> overrides;  // the `study run --set` the runs were trained with
  int bootstrap = 2000;                // paired bootstrap resamples (within a seed)
  uint64_t bootstrap_seed = 0;
  double alpha = 0.05;
  // One line per run evaluated (or read from its cached evaluation).
  std::function<void(const std::string&)> progress;
  // Further quality metrics of each run, from its checkpoint file (`msconv study report
  // --faithfulness SET` passes CAM faithfulness on a pair set here: inspect is not below eval).
  // They are cached with the run's evaluation under `extra_key` and computed again when the
  // key changes; they get the same per-cell statistics and comparisons as the accuracies.
  std::function<std::vector<std::pair<std::string, double>>(const std::string& checkpoint)>
      extra_metrics;
  std::string extra_key;
};

// Evaluations are cached per run in runs/NAME/study-eval-{best,last}.json, keyed by the
// checkpoint's size and modification time; a changed checkpoint is evaluated again.
std::string studyReport(const workspace::Workspace& ws, const study::Study& s,
                        const StudyReportOptions& o = {});

// The report in `format`: json (as is), text, csv (one row per cell and metric, then the
// comparisons), markdown or latex (tables of mean +- std and the comparisons). Throws
// msconv::Error for another format.
std::string formatStudyReport(const std::string& json, const std::string& format);

}  // namespace msconv::eval
