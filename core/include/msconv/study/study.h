// A study: a base configuration, axes (configuration keys with lists of values) and seeds. The
// axes' cross product is a set of cells; each cell trains once per seed, as a run of the
// workspace named after the study, the cell and the seed. The study file is JSON:
//
//   {"name": "operators",
//    "base": {"model.arch": "msnet-tiny", "train.max_steps": 300},
//    "axes": {"model.op": ["msconv-official", "skconv", "scconv"]},
//    "seeds": [0, 1, 2],
//    "reference": {"model.op": "msconv-official"},   // the cell the others are compared with
//    "checkpoint": "best"}                           // best or last: what the report evaluates
//
// and the workspace keeps a copy of it as ROOT/studies/NAME.json. A cell is identified by its
// configuration (base, overrides and its axis values): editing the file makes the cells whose
// configuration changed new cells, with new runs; no run is ever overwritten.
//
// No LibTorch here: the CLI and the workbench's Study panel both use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "msconv/store/run_store.h"

namespace msconv::workspace {
class Workspace;
}

namespace msconv::study {

using Setting = std::pair<std::string, std::string>;  // key, value (as `--set key=value`)

struct Study {
  std::string name;
  std::vector<Setting> base;
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;  // in the file's order
  std::vector<uint64_t> seeds;
  std::vector<Setting> reference;  // axis values naming the reference cell; empty: the first
  std::string checkpoint = "best";
};

// Reads and checks a study file: JSON shape, a name usable in run names, at least one seed,
// distinct seeds and axis values, and a reference that names an existing cell. Throws
// msconv::Error naming the file and the field.
Study readStudy(const std::string& path);
Study parseStudy(const std::string& json, const std::string& source);
std::string studyJson(const Study& s);  // the file's form (pretty-printed)
// Writes the file atomically (temporary file, fsync, rename).
void writeStudy(const std::string& path, const Study& s);

// The presets of `msconv study new`: the paper's experiments at CPU scale.
//   table5     the kernel pairs of MSConv (k3k3, k3k5, k5k3, k5k7)
//   table6     the ablation rows (msconv, msconv*, msconv-mo, msconv-so, msconv-mo-so)
//   operators  msconv-official, msconv, skconv, scconv, conv3x3 and the Table 7 peers
//   losses     arcface, cosface, cml
// `scale`: tiny (msnet-tiny, a few hundred steps) or small (msnet-small); throws for others.
Study preset(const std::string& name, const std::string& scale = "tiny");
std::vector<std::string> presetNames();

struct Cell {
  std::string id;                   // the axis values, "msconv-official" or "k3k5 / arcface"
  std::vector<Setting> axes;        // this cell's axis values
  std::vector<std::string> config;  // every key=value of the cell: base, overrides, axes
  std::string hash;                 // 8 hex digits of the configuration
  bool reference = false;
};

// `s` with `overrides` (key=value, `study run --set`) folded into its base. Throws msconv::Error
// for a setting that is not key=value or that names an axis.
Study withOverrides(Study s, const std::vector<std::string>& overrides);

// The cells of `s` in axis order (the last axis varies fastest), with `overrides` (key=value,
// `study run --set`) applied over the base. Each cell's configuration is validated as
// `msconv train --set` validates it (keys, types, ranges, the architecture and operator names)
// for every seed: an error names the study, the cell, the key and the value, before anything
// trains. More than 10,000 runs (cells x seeds) is an error.
std::vector<Cell> expand(const Study& s, const std::vector<std::string>& overrides = {});

// The run of a cell and seed: STUDY-CELL-HASH-sSEED (characters outside [A-Za-z0-9._-] become _).
std::string runName(const Study& s, const Cell& c, uint64_t seed);
// `msconv train --set` arguments of a cell's run: the cell's configuration and the seed.
std::vector<std::string> runSettings(const Cell& c, uint64_t seed);

// One cell x seed, as the store sees it.
struct CellRun {
  std::string cell, run;
  uint64_t seed = 0;
  bool exists = false;  // false: not started yet ("pending")
  store::RunRow row;
  int64_t step = 0,
          total_steps = 0;  // the last logged step; total from its configuration (0: unknown)
  std::string error;        // a failed run's reason (train.log)
  std::string statusText() const;  // pending, running, done, stopped, failed, interrupted
};
std::vector<CellRun> cellRuns(const Study& s, const std::vector<Cell>& cells,
                              const workspace::Workspace& ws);

// ROOT/studies/NAME.json, and the names of the studies a workspace keeps.
std::string studyFile(const workspace::Workspace& ws, const std::string& name);
std::vector<std::string> studyNames(const workspace::Workspace& ws);
// A study by workspace name or file path.
Study loadStudy(const workspace::Workspace& ws, const std::string& name_or_file);

}  // namespace msconv::study
