// msconv: the headless face of MSConv Lab. Everything the workbench does, on the same core.
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "msconv/error.h"
#include "msconv/runtime.h"
#include "msconv/store/run_store.h"

namespace {

struct Command {
  int (*run)(const msconv::cli::Argv&);
  const char* summary;
  std::vector<std::string> subcommands;  // "data info", "runs list", ...: named in the help
};

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> table = {
      {"info", {msconv::cli::cmdInfo, "operators, architectures, parameters and MACs"}},
      {"import",
       {msconv::cli::cmdImport,
        "a PyTorch state_dict or arcface_torch checkpoint(s) into a checkpoint"}},
      {"embed", {msconv::cli::cmdEmbed, "print the 512-d embedding of one image"}},
      {"export",
       {msconv::cli::cmdExport, "a checkpoint as an ONNX face model (insightface's layout)"}},
      {"data",
       {msconv::cli::cmdData,
        "datasets: info, check, pack, pack-pairs, synth, synth-ijb",
        {"info", "check", "pack", "pack-pairs", "synth", "synth-ijb"}}},
      {"train", {msconv::cli::cmdTrain, "train a model; prints the final checkpoint's path last"}},
      {"runs",
       {msconv::cli::cmdRuns,
        "the workspace's runs: list, show, export (CSV/JSON)",
        {"list", "show", "export"}}},
      {"eval", {msconv::cli::cmdEval, "accuracy, VAL, TAR@FAR, ROC and AUC on .bin sets and IJB"}},
      {"featuremaps",
       {msconv::cli::cmdFeatureMaps,
        "a layer's parts: U1, U2, add, multiply, subtract (MSConv, SKConv), the peers' (PNG)"}},
      {"gradcam", {msconv::cli::cmdGradCam, "Grad-CAM family across layers and models (PNG)"}},
      {"failures",
       {msconv::cli::cmdFailures,
        "false accepts / rejects, or pairs two models disagree on, by margin"}},
      {"compare", {msconv::cli::cmdCompare, "runs or checkpoints side by side (text, CSV, JSON)"}},
      {"study",
       {msconv::cli::cmdStudy,
        "seeds and grids of runs with statistics: new, run, status, report",
        {"new", "run", "status", "report"}}},
  };
  return table;
}

void printUsage(std::ostream& os) {
  os << "usage: msconv [--threads N] COMMAND [options]   (COMMAND --help for its options)\n"
        "       msconv help [COMMAND [SUBCOMMAND]]   msconv --version\n\n"
        "commands:\n";
  size_t width = 0;  // the longest name and two spaces, so every summary starts in one column
  for (const auto& entry : commands()) width = std::max(width, entry.first.size());
  for (const auto& [name, cmd] : commands()) {
    std::string left = "  " + name;
    left.resize(width + 4, ' ');
    os << left << cmd.summary << "\n";
  }
  os << "\nenvironment: MSCONV_THREADS sets the LibTorch intra-op thread count (default: all "
        "cores); --threads overrides it.\n";
}

// The help of a command (or subcommand) that declares no --help of its own.
void printHelp(const std::string& command, const msconv::cli::Argv& rest,
               const msconv::cli::HelpRequested& h) {
  std::string synopsis = h.synopsis;
  if (synopsis.empty()) {
    synopsis = "msconv " + command;
    const auto& subs = commands().at(command).subcommands;
    if (!rest.empty() && std::find(subs.begin(), subs.end(), rest[0]) != subs.end())
      synopsis += " " + rest[0];
    synopsis += " [options]";
  }
  std::cout << "usage: " << synopsis << "\n\noptions:\n" << h.options;
}

}  // namespace

int main(int argc, char** argv) {
  msconv::cli::Argv rest;
  int threads = 0;
  std::string command;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      // --threads belongs to msconv before the command word; after it, to the command
      // (`data synth --threads N` is the generator's).
      if (command.empty() && (a == "--threads" || a.rfind("--threads=", 0) == 0)) {
        std::string v = a == "--threads" ? (i + 1 < argc ? argv[++i] : "") : a.substr(10);
        try {
          size_t used = 0;
          threads = std::stoi(v, &used);
          if (used != v.size()) threads = -1;
        } catch (const std::exception&) {
          threads = -1;
        }
        if (threads <= 0)
          throw msconv::Error("--threads wants a positive integer, got '" + v + "'");
      } else if (command.empty() && a == "--version") {
        std::cout << "msconv " << msconv::store::projectVersion() << " (revision "
                  << msconv::store::sourceRevision() << ")\n";
        return 0;
      } else if (command.empty() && a.size() > 0 && a[0] != '-') {
        command = a;
      } else {
        rest.push_back(a);
      }
    }
    if (command.empty()) {
      if (rest.empty()) {
        printUsage(std::cerr);
        return 2;
      }
      if (rest[0] != "--help" && rest[0] != "-h")
        throw msconv::Error("unknown option '" + rest[0] + "' (see --help)");
      printUsage(std::cout);
      return 0;
    }
    if (command == "help") {  // `msconv help data synth` is `msconv data synth --help`
      if (rest.empty()) {
        printUsage(std::cout);
        return 0;
      }
      command = rest[0];
      rest.erase(rest.begin());
      rest.push_back("--help");
    }
    auto it = commands().find(command);
    if (it == commands().end())
      throw msconv::Error("unknown command '" + command + "' (see --help)");
    // --threads is MSCONV_THREADS for this process: training (train.threads=0) takes it too.
    if (threads > 0) ::setenv("MSCONV_THREADS", std::to_string(threads).c_str(), 1);
    msconv::setThreads(threads);
    msconv::keepFreedMemory();
    try {
      return it->second.run(rest);
    } catch (const msconv::cli::HelpRequested& h) {
      printHelp(command, rest, h);
      return 0;
    }
  } catch (const msconv::Error& e) {
    std::cerr << "msconv: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    // A LibTorch error that escaped a more specific message: keep its first line only.
    std::string msg = e.what_without_backtrace();
    msg = msg.substr(0, msg.find('\n'));
    std::cerr << "msconv: " << (command.empty() ? "" : command + ": ") << msg << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "msconv: " << (command.empty() ? "" : command + ": ") << e.what() << "\n";
    return 1;
  }
}
