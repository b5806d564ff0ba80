// msconv train / msconv runs: the training engine and the run store, headless.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "msconv/error.h"
#include "msconv/store/run_store.h"
#include "msconv/train/trainer.h"
#include "msconv/workspace/workspace.h"

namespace msconv::cli {
namespace {

train::Trainer* g_trainer = nullptr;

void onInterrupt(int) {
  if (g_trainer) g_trainer->requestStop();  // an atomic store: safe in a signal handler
  std::signal(SIGINT, SIG_DFL);             // a second Ctrl-C ends the process at once
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
                   {"--keys", false, "list the configuration keys"},
                   {"--help", false, "this help"}});
  if (args.flag("--help")) {
    std::cout << "usage: msconv train [--config FILE] [--set key=value]... [--workspace DIR] "
                 "[--name NAME] [--resume RUN_OR_CKPT]\n"
              << args.usage();
    return 0;
  }
  if (args.flag("--keys")) {
    for (const auto& [k, h] : config::Config::keys())
      std::printf("  %-30s %s\n", k.c_str(), h.c_str());
    return 0;
  }
  const auto config =
      config::Config::load(args.value("--config").value_or(""), args.values("--set"));
  train::Trainer trainer(config, args.value("--workspace").value_or(workspace::kDefaultWorkspace),
                         args.value("--name").value_or(""));
  const bool tty = ::isatty(STDERR_FILENO);
  trainer.addObserver([tty](const train::TrainEvent& e) { progress(e, tty); });
  g_trainer = &trainer;
  std::signal(SIGINT, onInterrupt);
  std::signal(SIGTERM, onInterrupt);
  train::TrainResult r;
  try {
    r = trainer.run(args.value("--resume").value_or(""));
  } catch (...) {
    g_trainer = nullptr;
    if (tty) std::fprintf(stderr, "\n");
    throw;
  }
  g_trainer = nullptr;
  if (tty) std::fprintf(stderr, "\n");
  std::fprintf(stderr, "run %s %s after %lld steps, loss %.4f\n", r.run_name.c_str(),
               store::statusName(r.status), static_cast<long long>(r.steps), r.last_loss);
  std::cout << r.final_checkpoint << std::endl;
  return 0;
}

int cmdRuns(const Argv& argv) {
  Args args(argv, {{"--workspace", true, "workspace folder (default ./runs)"},
                   {"--format", true, "export format: csv or json (default json)"},
                   {"--output", true, "export to this file instead of stdout", "-o"},
                   {"--json", false, "list / show as JSON"}});
  const auto& pos = args.positionals();
  if (pos.empty())
    throw Error("usage: msconv runs list | show RUN | export RUN [--format csv|json]");
  const workspace::Workspace ws(args.value("--workspace").value_or(workspace::kDefaultWorkspace));
  const auto store = ws.openStore();
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
      std::printf("%-4lld %-28s %-12s %-22s %-12s %s\n", static_cast<long long>(r.id),
                  r.name.c_str(), r.arch.c_str(), r.op.c_str(), store::statusName(r.status),
                  loss.empty() ? "-" : std::to_string(loss.back().value).c_str());
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
