// msconv train / msconv runs: the training engine and the run store, headless.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>

#include "args.h"
#include "commands.h"
#include "msconv/error.h"
#include "msconv/store/run_store.h"
#include "msconv/train/collective.h"
#include "msconv/train/trainer.h"
#include "msconv/workspace/workspace.h"

namespace msconv::cli {
namespace {

train::Trainer* g_trainer = nullptr;
volatile std::sig_atomic_t g_stop_signal = 0;  // the signal that stopped the run, for the exit code

void onInterrupt(int sig) {
  g_stop_signal = sig;
  if (g_trainer) g_trainer->requestStop();  // an atomic store: safe in a signal handler
  std::signal(SIGINT, SIG_DFL);             // a second Ctrl-C ends the process at once
}

volatile std::sig_atomic_t g_launcher_stop = 0;

void onLauncherInterrupt(int sig) {
  g_launcher_stop = sig;
}

// `msconv train --nproc N ...`: N local ranks, each `msconv train ...` with torchrun's variables,
// as torchrun would start them. Ctrl-C reaches every rank as a stop with a checkpoint. When a
// rank fails, the others stop by themselves within train.dist_timeout; any still running some
// time after that are killed. The exit status is the first failed rank's.
int launchLocal(const Argv& argv, int nproc, double timeout_s) {
  for (const char* v : {"RANK", "WORLD_SIZE"})
    if (const char* x = std::getenv(v); x && *x)
      throw Error(std::string("--nproc starts its own ranks, but ") + v + "=" + x +
                  " is set: use one or the other");
  std::vector<std::string> child = {"msconv"};
  if (const char* t = std::getenv("MSCONV_THREADS"); !(t && *t)) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    child.insert(child.end(), {"--threads", std::to_string(std::max(1, cores / nproc))});
  }
  child.push_back("train");
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--nproc") {
      ++i;
      continue;
    }
    if (argv[i].rfind("--nproc=", 0) == 0) continue;
    child.push_back(argv[i]);
  }
  const char* port_env = std::getenv("MASTER_PORT");
  const int port = port_env && *port_env ? std::atoi(port_env) : train::freeLoopbackPort();
  if (port < 1 || port > 65535)
    throw Error(std::string("MASTER_PORT='") + port_env + "' is not a port");
  g_launcher_stop = 0;
  auto old_int = std::signal(SIGINT, onLauncherInterrupt);
  auto old_term = std::signal(SIGTERM, onLauncherInterrupt);
  std::vector<pid_t> pids(nproc, 0);
  std::vector<int> codes(nproc, -1);
  for (int r = 0; r < nproc; ++r) {
    std::vector<std::string> env = train::rankEnvironment(r, nproc, port);
    std::vector<char*> a, e;
    for (auto& x : child) a.push_back(x.data());
    a.push_back(nullptr);
    for (auto& x : env) e.push_back(x.data());
    e.push_back(nullptr);
    const int rc = posix_spawn(&pids[r], "/proc/self/exe", nullptr, nullptr, a.data(), e.data());
    if (rc != 0) {
      for (int k = 0; k < r; ++k) ::kill(pids[k], SIGTERM);
      throw Error("--nproc: cannot start rank " + std::to_string(r) + ": " + std::strerror(rc));
    }
  }
  std::fprintf(stderr, "started %d ranks (rendezvous 127.0.0.1:%d)\n", nproc, port);
  int alive = nproc, first_failed = -1;
  bool forwarded = false;
  std::chrono::steady_clock::time_point failed_at;
  while (alive > 0) {
    if (g_launcher_stop && !forwarded) {
      // SIGTERM: a terminal's Ctrl-C reached the ranks too; a second SIGINT would end them
      // without a checkpoint, a SIGTERM only asks again for the stop.
      for (int r = 0; r < nproc; ++r)
        if (codes[r] < 0) ::kill(pids[r], SIGTERM);
      forwarded = true;
    }
    if (first_failed >= 0 && std::chrono::steady_clock::now() - failed_at >
                                 std::chrono::duration<double>(timeout_s + 30)) {
      for (int r = 0; r < nproc; ++r)
        if (codes[r] < 0) {
          std::fprintf(stderr, "rank %d did not stop after rank %d failed: killing it\n", r,
                       first_failed);
          ::kill(pids[r], SIGKILL);
        }
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid == 0 || (pid < 0 && errno == EINTR)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (pid < 0) break;
    for (int r = 0; r < nproc; ++r) {
      if (pids[r] != pid) continue;
      codes[r] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      --alive;
      // A rank asked to stop exits 128 + the signal after its checkpoint: stopped, not failed
      // (the terminal's Ctrl-C may reach it before the launcher forwards its own).
      const bool stopped = g_launcher_stop && WIFEXITED(status) &&
                           (codes[r] == 128 + SIGINT || codes[r] == 128 + SIGTERM);
      if (codes[r] != 0 && !stopped) {
        if (WIFSIGNALED(status))
          std::fprintf(stderr, "rank %d was killed by signal %d\n", r, WTERMSIG(status));
        else
          std::fprintf(stderr, "rank %d exited with status %d\n", r, codes[r]);
        if (first_failed < 0) {
          first_failed = r;
          failed_at = std::chrono::steady_clock::now();
        }
      }
    }
  }
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (first_failed >= 0) return codes[first_failed];
  return g_launcher_stop ? 128 + static_cast<int>(g_launcher_stop) : 0;  // 130 after Ctrl-C
}

std::string duration(double s) {
  char buf[32];
  const int64_t t = static_cast<int64_t>(s);
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
  return buf;
}

void progress(const train::TrainEvent& e, bool tty) {
  using K = train::TrainEvent::Kind;
  if (e.kind == K::kStep) {
    const int width = 24;
    const int filled = e.total_steps ? static_cast<int>(width * e.step / e.total_steps) : 0;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr,
                 "%s[%s] step %lld/%lld  epoch %lld  loss %.4f  lr %.3g  %.0f samples/s  grad %.2f "
                 " eta %s%s",
                 tty ? "\r" : "", bar.c_str(), static_cast<long long>(e.step),
                 static_cast<long long>(e.total_steps), static_cast<long long>(e.epoch), e.loss,
                 e.lr, e.samples_per_s, e.grad_norm, duration(e.eta_s).c_str(), tty ? "" : "\n");
  } else if (e.kind == K::kValidation) {
    std::fprintf(stderr, "%sstep %lld validation:", tty ? "\n" : "",
                 static_cast<long long>(e.step));
    for (const auto& [k, v] : e.metrics)
      if (k.size() > 9 && k.compare(k.size() - 9, 9, "/accuracy") == 0)
        std::fprintf(stderr, "  %s %.2f%%", k.c_str(), 100 * v);
    std::fprintf(stderr, "\n");
  } else if (e.kind == K::kPrepare) {
    std::fprintf(stderr, "%s%s: %lld of %lld images%s", tty ? "\r" : "", e.message.c_str(),
                 static_cast<long long>(e.step), static_cast<long long>(e.total_steps),
                 tty && e.step < e.total_steps ? "" : "\n");
  } else if (e.kind == K::kStart) {
    std::fprintf(stderr, "run %s: %lld steps (from step %lld)\n", e.message.c_str(),
                 static_cast<long long>(e.total_steps), static_cast<long long>(e.step));
  }
  std::fflush(stderr);
}

}  // namespace

int cmdTrain(const Argv& argv) {
  Args args(argv, {{"--config", true, "JSON configuration file"},
                   {"--set", true, "key=value override (repeatable)"},
                   {"--workspace", true, "workspace folder (default ./runs)"},
                   {"--name", true, "run name (default ARCH-OP)"},
                   {"--resume", true, "run name or checkpoint to continue"},
                   {"--nproc", true, "train with N local processes (ranks) as one run"},
                   {"--threads-as-ranks", false,
                    "with --nproc: the N ranks as threads of this process (the in-process "
                    "collective), to check the multi-process path against"},
                   {"--keys", false, "list the configuration keys"},
                   {"--help", false, "this help"}});
  if (args.flag("--help")) {
    std::cout
        << "usage: msconv train [--config FILE] [--set key=value]... [--workspace DIR] "
           "[--name NAME] [--resume RUN_OR_CKPT] [--nproc N]\n"
        << args.usage()
        << "\nSeveral processes, one run: --nproc N starts N local ranks; or start each rank\n"
           "yourself with torchrun's variables RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,\n"
           "MASTER_ADDR and MASTER_PORT set (one machine or several; c10d's TCPStore and\n"
           "Gloo). train.batch_size is the global batch; only rank 0 writes.\n";
    return 0;
  }
  if (args.flag("--keys")) {
    for (const auto& [k, h] : config::Config::keys())
      std::printf("  %-30s %s\n", k.c_str(), h.c_str());
    return 0;
  }
  const auto config =
      config::Config::load(args.value("--config").value_or(""), args.values("--set"));
  const int nproc = args.integer("--nproc", 1);
  if (nproc < 1 || nproc > 1024) throw Error("--nproc wants 1 to 1024 processes");
  const bool as_threads = args.flag("--threads-as-ranks");
  if (nproc > 1 && !as_threads)
    return launchLocal(argv, nproc, config.settings().train.dist_timeout);
  std::shared_ptr<train::Collective> group;
  std::vector<std::shared_ptr<train::Collective>> thread_ranks;
  if (nproc > 1) {
    thread_ranks = train::threadGroup(nproc);
    group = thread_ranks[0];
  } else if (auto launch = train::launchFromEnvironment()) {
    launch->timeout_s = config.settings().train.dist_timeout;
    launch->cuda = config.settings().train.device != "cpu";
    group = train::processGroup(*launch);
  }
  const bool rank0 = !group || group->rank() == 0;
  train::Trainer trainer(config, args.value("--workspace").value_or(workspace::kDefaultWorkspace),
                         args.value("--name").value_or(""), group);
  const bool tty = ::isatty(STDERR_FILENO);
  if (rank0) trainer.addObserver([tty](const train::TrainEvent& e) { progress(e, tty); });
  g_trainer = &trainer;
  std::signal(SIGINT, onInterrupt);
  std::signal(SIGTERM, onInterrupt);
  // --threads-as-ranks: ranks 1..N-1 on threads of their own; rank 0 here.
  std::vector<std::string> rank_errors(thread_ranks.size());
  std::vector<std::thread> rank_threads;
  for (size_t r = 1; r < thread_ranks.size(); ++r)
    rank_threads.emplace_back([&, r] {
      try {
        train::Trainer(config, args.value("--workspace").value_or(workspace::kDefaultWorkspace),
                       args.value("--name").value_or(""), thread_ranks[r])
            .run(args.value("--resume").value_or(""));
      } catch (const std::exception& e) {
        rank_errors[r] = e.what();
      }
    });
  train::TrainResult r;
  try {
    r = trainer.run(args.value("--resume").value_or(""));
  } catch (...) {
    g_trainer = nullptr;
    for (auto& t : rank_threads) t.join();
    if (tty) std::fprintf(stderr, "\n");
    throw;
  }
  g_trainer = nullptr;
  for (auto& t : rank_threads) t.join();
  for (size_t k = 1; k < rank_errors.size(); ++k)
    if (!rank_errors[k].empty()) throw Error("rank " + std::to_string(k) + ": " + rank_errors[k]);
  if (!rank0) return 0;  // only rank 0 speaks for the run
  if (tty) std::fprintf(stderr, "\n");
  if (r.status == store::RunStatus::kStopped && r.final_checkpoint.empty() && r.run_dir.empty()) {
    // Stopped while the synthetic set was generated: no run was made (and no partial set kept).
    std::fprintf(stderr, "stopped before the first step, while preparing the data: no run made\n");
    return 128 + (g_stop_signal ? static_cast<int>(g_stop_signal) : SIGINT);
  }
  if (r.steps_run == 0 && r.status == store::RunStatus::kDone)
    std::fprintf(stderr,
                 "run %s is already finished (step %lld of %lld, loss %.4f): nothing to train\n",
                 r.run_name.c_str(), static_cast<long long>(r.steps),
                 static_cast<long long>(r.total_steps), r.last_loss);
  else
    std::fprintf(stderr, "run %s %s at step %lld of %lld, loss %.4f\n", r.run_name.c_str(),
                 store::statusName(r.status), static_cast<long long>(r.steps),
                 static_cast<long long>(r.total_steps), r.last_loss);
  std::cout << r.final_checkpoint << std::endl;
  if (r.status == store::RunStatus::kStopped) {
    std::fprintf(stderr, "continue it with: msconv train --resume %s\n", r.run_name.c_str());
    // Stopped by a signal: exit as shells expect of it (130 for Ctrl-C), after the checkpoint.
    return 128 + (g_stop_signal ? static_cast<int>(g_stop_signal) : SIGINT);
  }
  return 0;
}

int cmdRuns(const Argv& argv) {
  Args args(argv,
            {{"--workspace", true, "workspace folder (default ./runs)"},
             {"--format", true, "export format: csv or json (default json)"},
             {"--output", true, "export to this file instead of stdout", "-o"},
             {"--json", false, "list / show as JSON"}},
            "msconv runs list | show RUN | export RUN [--format csv|json] [-o FILE] "
            "[--workspace DIR]");
  const auto& pos = args.positionals();
  if (pos.empty())
    throw Error("usage: msconv runs list | show RUN | export RUN [--format csv|json]");
  const workspace::Workspace ws(args.value("--workspace").value_or(workspace::kDefaultWorkspace));
  const auto store = ws.openExistingStore();  // reading never creates a workspace
  store::RunStore& db = *store;
  // A failed run's error, as its train.log recorded it.
  auto errorOf = [&](const store::RunRow& r) {
    return r.status == store::RunStatus::kFailed ? ws.runError(r.name) : std::string();
  };
  auto runJson = [&](const store::RunRow& r) {
    nlohmann::json j{{"id", r.id},
                     {"name", r.name},
                     {"arch", r.arch},
                     {"op", r.op},
                     {"status", store::statusName(r.status)},
                     {"host", r.host},
                     {"revision", r.revision},
                     {"created", r.created},
                     {"ended", r.ended}};
    if (const std::string e = errorOf(r); !e.empty()) j["error"] = e;
    return j;
  };
  if (pos[0] == "list") {
    const auto runs = db.runs();
    if (args.flag("--json")) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& r : runs) j.push_back(runJson(r));
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    std::printf("%-4s %-28s %-12s %-22s %-12s %s\n", "id", "name", "arch", "op", "status",
                "last loss");
    for (const auto& r : runs) {
      const auto loss = db.metrics(r.id, "loss");
      char last[32] = "-";  // as `msconv train` closes: %.4f
      if (!loss.empty()) std::snprintf(last, sizeof last, "%.4f", loss.back().value);
      std::printf("%-4lld %-28s %-12s %-22s %-12s %s\n", static_cast<long long>(r.id),
                  r.name.c_str(), r.arch.c_str(), r.op.c_str(), store::statusName(r.status), last);
      if (const std::string e = errorOf(r); !e.empty()) std::printf("     error: %s\n", e.c_str());
    }
    return 0;
  }
  if (pos.size() < 2) throw Error("runs " + pos[0] + " wants a RUN name or id");
  const auto run = db.run(pos[1]);
  const auto metrics = db.metrics(run.id);
  if (pos[0] == "show") {
    nlohmann::json j = runJson(run);
    j["config"] = nlohmann::json::parse(run.config.empty() ? "{}" : run.config);
    std::map<std::string, std::pair<int64_t, double>> last;
    for (const auto& m : metrics) last[m.key] = {m.step, m.value};
    for (const auto& [k, v] : last) j["last"][k] = {{"step", v.first}, {"value", v.second}};
    for (const auto& a : db.artifacts(run.id))
      j["artifacts"].push_back({{"kind", a.kind}, {"path", a.path}, {"step", a.step}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  if (pos[0] == "export") {
    const std::string fmt = args.value("--format").value_or("json");
    std::ofstream file;
    if (auto o = args.value("--output")) {
      file.open(*o);
      if (!file) throw Error(*o + ": cannot write");
    }
    std::ostream& out = args.value("--output") ? file : std::cout;
    if (fmt == "csv") {
      out << "run,step,wall,key,value\n";
      for (const auto& m : metrics)
        out << run.name << "," << m.step << "," << std::fixed << m.wall << "," << m.key << ","
            << m.value << "\n";
    } else if (fmt == "json") {
      nlohmann::json j = runJson(run);
      for (const auto& m : metrics)
        j["metrics"].push_back(
            {{"step", m.step}, {"wall", m.wall}, {"key", m.key}, {"value", m.value}});
      out << j.dump(1) << "\n";
    } else {
      throw Error("--format must be csv or json, got '" + fmt + "'");
    }
    return 0;
  }
  throw Error("unknown runs command '" + pos[0] + "' (list, show, export)");
}

}  // namespace msconv::cli
