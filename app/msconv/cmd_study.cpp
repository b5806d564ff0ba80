// msconv study: seeds, grids and statistics. `new` writes a preset's study file, `run` trains its
// missing cell x seed runs (child `msconv train` processes, N at a time) and resumes interrupted
// ones, `status` shows the grid, `report` evaluates and compares.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "args.h"
#include "commands.h"
#include "msconv/atomic_file.h"
#include "msconv/config/config.h"
#include "msconv/data/pairs.h"
#include "msconv/error.h"
#include "msconv/eval/metric_name.h"
#include "msconv/eval/study_report.h"
#include "msconv/inspect/faithfulness.h"
#include "msconv/model/checkpoint.h"
#include "msconv/runtime.h"
#include "msconv/study/study.h"
#include "msconv/workspace/workspace.h"

extern char** environ;

namespace fs = std::filesystem;

namespace msconv::cli {
namespace {

volatile sig_atomic_t g_stop = 0;
void onStudyInterrupt(int) {
  g_stop = 1;
}

const char* kUsage =
    "usage: msconv study new --preset NAME [--scale tiny|small] -o FILE\n"
    "       msconv study run FILE|NAME [--workspace DIR] [--parallel N] [--set key=value]...\n"
    "       msconv study status [NAME] [--workspace DIR] [--json]\n"
    "       msconv study report NAME [--workspace DIR] [--format text|csv|json|markdown|latex] "
    "[-o FILE]\n"
    "                           [--faithfulness SET.bin [--faithfulness-method gradcam[,...]] "
    "[--faithfulness-n 10]]\n";

std::string lastLine(const std::string& file) {
  std::ifstream in(file);
  std::string line, last;
  while (std::getline(in, line)) {
    // a progress bar's carriage returns: keep the text after the last one
    const auto cr = line.rfind('\r');
    if (cr != std::string::npos) line = line.substr(cr + 1);
    if (!line.empty()) last = line;
  }
  return last;
}

struct Child {
  pid_t pid = 0;
  std::string run, out;
  size_t index = 0;
  std::chrono::steady_clock::time_point started;
};

pid_t spawnTrain(const std::vector<std::string>& argv, const std::string& out) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw Error("study: cannot start msconv train: " + std::string(std::strerror(rc)));
  return pid;
}

int studyNew(const Args& args) {
  const auto name = args.value("--preset");
  if (!name) {
    std::string all;
    for (const auto& n : study::presetNames()) all += (all.empty() ? "" : ", ") + n;
    throw Error("study new: --preset NAME is required (" + all + ")");
  }
  const auto out = args.required("--output");
  const auto s = study::preset(*name, args.value("--scale").value_or("tiny"));
  study::expand(s);  // a preset is valid in this build
  study::writeStudy(out, s);
  std::cout << out << "\n";
  return 0;
}

int studyRun(const Args& args, const workspace::Workspace& ws) {
  if (args.positionals().size() < 2) throw Error("study run: wants a study FILE (or NAME)");
  // The workspace keeps the study as it runs (the overrides folded into its base), so that
  // `study status NAME` and `study report NAME` find the same cells.
  const auto s =
      study::withOverrides(study::loadStudy(ws, args.positionals()[1]), args.values("--set"));
  // Every cell validated for every seed before anything trains.
  const auto cells = study::expand(s);
  const int parallel = args.integer("--parallel", 1);
  if (parallel < 1 || parallel > 64) throw Error("study run: --parallel must be 1..64");
  fs::create_directories(fs::path(ws.root()) / "studies" / s.name);
  study::writeStudy(study::studyFile(ws, s.name), s);
  // Synthetic sets once, before the runs start (the runs of all seeds usually share one).
  std::set<std::string> prepared;
  for (const auto& c : cells)
    for (uint64_t seed : s.seeds) {
      const auto settings = config::Config::load("", study::runSettings(c, seed)).settings();
      const std::string key = std::to_string(settings.data.synthetic.identities) + "x" +
                              std::to_string(settings.data.synthetic.images_per_id) + "/" +
                              std::to_string(settings.data.synthetic.seed);
      if ((settings.data.train == "synthetic" ||
           std::find(settings.data.val.begin(), settings.data.val.end(), "synthetic") !=
               settings.data.val.end()) &&
          prepared.insert(key).second) {
        std::fprintf(stderr, "synthetic set %s: %s\n", key.c_str(),
                     ws.syntheticSet(settings.data.synthetic).c_str());
      }
    }
  struct Job {
    std::string run, cell;
    uint64_t seed;
    std::vector<std::string> settings;
    bool resume;
  };
  std::vector<Job> jobs;
  int done = 0, failed = 0, busy = 0;
  for (const auto& r : study::cellRuns(s, cells, ws)) {
    const auto& cell = *std::find_if(cells.begin(), cells.end(),
                                     [&](const study::Cell& c) { return c.id == r.cell; });
    if (!r.exists) {
      jobs.push_back({r.run, r.cell, r.seed, study::runSettings(cell, r.seed), false});
    } else if (r.row.status == store::RunStatus::kDone) {
      ++done;
    } else if (r.row.status == store::RunStatus::kFailed) {
      ++failed;  // a failed cell-seed stays failed: never retried behind the user's back
      std::fprintf(stderr, "%s (%s, seed %llu) failed earlier, not retried: %s\n", r.run.c_str(),
                   r.cell.c_str(), static_cast<unsigned long long>(r.seed), r.error.c_str());
    } else if (r.row.status == store::RunStatus::kRunning) {
      ++busy;  // a live process trains it (the store marks dead ones interrupted)
      std::fprintf(stderr, "%s is being trained by process %lld: left alone\n", r.run.c_str(),
                   static_cast<long long>(r.row.pid));
    } else {
      jobs.push_back({r.run, r.cell, r.seed, {}, true});  // stopped or interrupted: resume
    }
  }
  const size_t total = cells.size() * s.seeds.size();
  std::fprintf(stderr,
               "study %s: %zu cells x %zu seeds = %zu runs; %d done, %d failed, %d running "
               "elsewhere, %zu to train (%d at a time)\n",
               s.name.c_str(), cells.size(), s.seeds.size(), total, done, failed, busy, jobs.size(),
               parallel);
  // Each child gets an equal share of the cores (unless MSCONV_THREADS says otherwise).
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const char* env_threads = std::getenv("MSCONV_THREADS");
  const int threads =
      env_threads && *env_threads ? std::atoi(env_threads) : std::max(1, cores / parallel);
  const std::string logs = (fs::path(ws.root()) / "studies" / s.name).string();
  g_stop = 0;
  auto old_int = std::signal(SIGINT, onStudyInterrupt);
  auto old_term = std::signal(SIGTERM, onStudyInterrupt);
  std::vector<Child> running;
  size_t next = 0;
  int trained = 0, newly_failed = 0;
  bool forwarded = false;
  const auto t0 = std::chrono::steady_clock::now();
  while (next < jobs.size() || !running.empty()) {
    if (g_stop && !forwarded) {  // Ctrl-C: every child checkpoints and stops
      std::fprintf(stderr, "\nstopping %zu run(s) with a checkpoint...\n", running.size());
      // SIGTERM, not SIGINT: a terminal's Ctrl-C reached the children too, and a second SIGINT
      // ends `msconv train` at once, while a SIGTERM after it only asks again for the stop.
      for (const auto& c : running) ::kill(c.pid, SIGTERM);
      forwarded = true;
    }
    while (!g_stop && next < jobs.size() && static_cast<int>(running.size()) < parallel) {
      const Job& j = jobs[next];
      Child c;
      c.run = j.run;
      c.index = next;
      c.out = logs + "/" + j.run + ".out";
      std::vector<std::string> argv = {"msconv", "--threads",   std::to_string(threads),
                                       "train",  "--workspace", ws.root()};
      if (j.resume) {
        argv.insert(argv.end(), {"--resume", j.run});
      } else {
        argv.insert(argv.end(), {"--name", j.run});
        for (const auto& kv : j.settings) argv.insert(argv.end(), {"--set", kv});
      }
      c.pid = spawnTrain(argv, c.out);
      c.started = std::chrono::steady_clock::now();
      std::fprintf(stderr, "[%zu/%zu] %s %s (%s, seed %llu)\n", next + 1, jobs.size(),
                   j.resume ? "resuming" : "training", j.run.c_str(), j.cell.c_str(),
                   static_cast<unsigned long long>(j.seed));
      running.push_back(c);
      ++next;
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto it =
        std::find_if(running.begin(), running.end(), [&](const Child& c) { return c.pid == pid; });
    if (it == running.end()) continue;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - it->started).count();
    // A run asked to stop exits 128 + the signal after its checkpoint (130 for Ctrl-C).
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    const bool ok = code == 0 || (g_stop && (code == 128 + SIGINT || code == 128 + SIGTERM));
    if (ok && !g_stop) {
      ++trained;
      std::fprintf(stderr, "[%zu/%zu] %s done in %.1f s\n", it->index + 1, jobs.size(),
                   it->run.c_str(), secs);
    } else if (ok) {
      std::fprintf(stderr, "[%zu/%zu] %s stopped with a checkpoint\n", it->index + 1, jobs.size(),
                   it->run.c_str());
    } else {
      ++newly_failed;
      std::fprintf(stderr, "[%zu/%zu] %s failed after %.1f s: %s (%s)\n", it->index + 1,
                   jobs.size(), it->run.c_str(), secs, lastLine(it->out).c_str(), it->out.c_str());
    }
    running.erase(it);
  }
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (g_stop) {
    std::fprintf(stderr, "study %s stopped after %.1f s: run it again to resume\n", s.name.c_str(),
                 wall);
    return 130;
  }
  std::fprintf(stderr, "study %s: %d trained in %.1f s, %d failed\n", s.name.c_str(), trained, wall,
               failed + newly_failed);
  std::cout << study::studyFile(ws, s.name) << "\n";
  return newly_failed || failed ? 1 : 0;
}

int studyStatus(const Args& args, const workspace::Workspace& ws) {
  if (args.positionals().size() < 2) {
    for (const auto& n : study::studyNames(ws)) std::cout << n << "\n";
    return 0;
  }
  const auto s = study::loadStudy(ws, args.positionals()[1]);
  const auto cells = study::expand(s);
  const auto runs = study::cellRuns(s, cells, ws);
  if (args.flag("--json")) {
    nlohmann::json j{{"study", s.name}, {"seeds", s.seeds}, {"cells", nlohmann::json::array()}};
    for (size_t c = 0; c < cells.size(); ++c) {
      nlohmann::json jc{{"id", cells[c].id}, {"reference", cells[c].reference}};
      for (size_t k = 0; k < s.seeds.size(); ++k) {
        const auto& r = runs[c * s.seeds.size() + k];
        nlohmann::json jr{{"seed", r.seed},
                          {"run", r.run},
                          {"status", r.statusText()},
                          {"step", r.step},
                          {"total_steps", r.total_steps}};
        if (!r.error.empty()) jr["error"] = r.error;
        jr["settings"] = study::runSettings(cells[c], r.seed);  // msconv train --set of the run
        jc["runs"].push_back(jr);
      }
      j["cells"].push_back(jc);
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  size_t w = 4;
  for (const auto& c : cells) w = std::max(w, c.id.size() + (c.reference ? 6 : 0));
  std::printf("study %s (%s)\n%-*s", s.name.c_str(), study::studyFile(ws, s.name).c_str(),
              static_cast<int>(w), "cell");
  for (uint64_t seed : s.seeds) std::printf("  %-20s", ("seed " + std::to_string(seed)).c_str());
  std::printf("\n");
  std::map<std::string, int> counts;
  for (size_t c = 0; c < cells.size(); ++c) {
    std::printf("%-*s", static_cast<int>(w),
                (cells[c].id + (cells[c].reference ? " (ref)" : "")).c_str());
    for (size_t k = 0; k < s.seeds.size(); ++k) {
      const auto& r = runs[c * s.seeds.size() + k];
      std::string t = r.statusText();
      if (r.exists && r.row.status != store::RunStatus::kDone)
        t += " " + std::to_string(r.step) +
             (r.total_steps ? "/" + std::to_string(r.total_steps) : std::string());
      ++counts[r.statusText()];
      std::printf("  %-20s", t.c_str());
    }
    std::printf("\n");
  }
  std::string summary;
  for (const auto& [k, v] : counts)
    summary += (summary.empty() ? "" : ", ") + std::to_string(v) + " " + k;
  std::printf("%s\n", summary.c_str());
  for (const auto& r : runs)
    if (!r.error.empty()) std::printf("  %s failed: %s\n", r.run.c_str(), r.error.c_str());
  return 0;
}

int studyReportCmd(const Args& args, const workspace::Workspace& ws) {
  if (args.positionals().size() < 2) throw Error("study report: wants a study NAME (or FILE)");
  const auto s = study::loadStudy(ws, args.positionals()[1]);
  const std::string format = args.value("--format").value_or("text");
  eval::StudyReportOptions o;
  o.bootstrap = args.integer("--bootstrap", 2000);
  if (o.bootstrap < 100) throw Error("study report: --bootstrap wants at least 100 resamples");
  o.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  if (const auto set_path = args.value("--faithfulness")) {
    // CAM faithfulness of each run's checkpoint on N genuine pairs of a set (the code of `msconv
    // gradcam --metrics`, CAMs at the last unit of each stage, their mean reported).
    std::vector<inspect::CamMethod> methods;
    for (const auto& m : splitCommas(args.value("--faithfulness-method").value_or("gradcam")))
      methods.push_back(inspect::camMethodFromName(m));
    const int n = args.integer("--faithfulness-n", 10);
    auto set = std::make_shared<data::PairSet>(data::readPairsBin(*set_path));
    inspect::faithfulnessPairs(*set, n);  // --faithfulness-n against the set, before any work
    const std::string set_name = std::filesystem::path(*set_path).filename().string();
    std::error_code ec;
    o.extra_key = "faithfulness " + std::filesystem::absolute(*set_path).string() + " " +
                  std::to_string(std::filesystem::file_size(*set_path, ec)) + " n " +
                  std::to_string(n) + " methods " +
                  args.value("--faithfulness-method").value_or("gradcam");
    o.extra_metrics = [set, set_name, methods, n](const std::string& ckpt) {
      auto loaded = model::loadModel(ckpt);
      const std::string label = inspect::camRowLabel(ckpt, loaded.op);
      std::vector<std::pair<std::string, double>> out;
      for (const auto method : methods) {
        inspect::CamOptions cam;
        cam.method = method;
        const auto rows = inspect::faithfulnessOnPairs(*loaded.model, label, *set, n, cam);
        const auto& r = rows.size() > 1 && rows.back().layer == "mean" ? rows.back() : rows.at(0);
        const std::string name = inspect::camMethodName(method);
        out.emplace_back(eval::faithfulnessLabel(set_name, name, "deletion"), r.deletion_auc);
        out.emplace_back(eval::faithfulnessLabel(set_name, name, "insertion"), r.insertion_auc);
        out.emplace_back(eval::faithfulnessLabel(set_name, name, "road"), r.road_combined);
        out.emplace_back(eval::faithfulnessLabel(set_name, name, "drop"), r.drop);
      }
      return out;
    };
  } else {
    for (const char* only : {"--faithfulness-method", "--faithfulness-n"})
      if (args.value(only)) throw Error(std::string(only) + " is an option of --faithfulness");
  }
  const std::string text = eval::formatStudyReport(eval::studyReport(ws, s, o), format);
  if (auto path = args.value("--output")) {
    writeFileAtomically(*path, text);
    std::cout << *path << "\n";
  } else {
    std::cout << text;
  }
  return 0;
}

}  // namespace

int cmdStudy(const Argv& argv) {
  Args args(argv, {{"--preset", true, "study new: table5, table6, operators or losses"},
                   {"--scale", true, "study new: tiny (default) or small"},
                   {"--output", true, "write to this file", "-o"},
                   {"--workspace", true, "workspace folder (default ./runs)"},
                   {"--parallel", true, "study run: runs trained at once (default 1)"},
                   {"--set", true, "study run: key=value over the base (repeatable)"},
                   {"--format", true, "study report: text, csv, json, markdown or latex"},
                   {"--bootstrap", true, "study report: bootstrap resamples (default 2000)"},
                   {"--faithfulness", true,
                    "study report: CAM faithfulness (deletion, insertion, ROAD, drop) of each "
                    "run on this .bin set's genuine pairs"},
                   {"--faithfulness-method", true,
                    "study report: CAM methods for --faithfulness (gradcam; a comma list)"},
                   {"--faithfulness-n", true, "study report: pairs for --faithfulness (10)"},
                   {"--json", false, "study status: as JSON"},
                   {"--help", false, "this help"}});
  const auto& pos = args.positionals();
  if (args.flag("--help") || pos.empty()) {
    (pos.empty() && !args.flag("--help") ? std::cerr : std::cout) << kUsage << args.usage();
    return pos.empty() && !args.flag("--help") ? 2 : 0;
  }
  const workspace::Workspace ws(args.value("--workspace").value_or(workspace::kDefaultWorkspace));
  if (pos[0] == "new") return studyNew(args);
  if (pos[0] == "run") return studyRun(args, ws);
  if (pos[0] == "status") return studyStatus(args, ws);
  if (pos[0] == "report") return studyReportCmd(args, ws);
  throw Error("unknown study command '" + pos[0] + "' (new, run, status, report)");
}

}  // namespace msconv::cli
