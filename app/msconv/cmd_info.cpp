// msconv info: operators, architectures, and the complexity of a backbone.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "msconv/error.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/complexity.h"
#include "msconv/nn/paper.h"
#include "msconv/runtime.h"

namespace msconv::cli {
namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// The paper's Table 8 complexity beside ours, model by model, with the reading taken.
int printPaperTable(bool json) {
  nlohmann::json rows = nlohmann::json::array();
  if (!json)
    std::printf("%-12s %-26s %12s %12s %10s %10s\n", "model", "arch / op", "params (M)",
                "paper (M)", "GMACs", "paper (G)");
  for (const auto& row : nn::paperTable8()) {
    const nn::ArchSpec arch = nn::parseArch(row.arch);
    auto model = nn::makeBackbone(arch, nn::parseOpSpec(row.op));
    const nn::Complexity c = nn::measureComplexity(*model, 112);
    if (json) {
      rows.push_back({{"model", row.model},
                      {"arch", arch.str()},
                      {"op", row.op},
                      {"params", c.params},
                      {"macs", c.macs},
                      {"paper_params", row.paper_params_m * 1e6},
                      {"paper_macs", row.paper_gmacs * 1e9},
                      {"reading", row.reading}});
      continue;
    }
    std::printf("%-12s %-26s %12s %12s %10s %10s\n", row.model.c_str(),
                (row.arch + " / " + row.op).c_str(), fixed(c.params / 1e6, 2).c_str(),
                fixed(row.paper_params_m, 1).c_str(), fixed(c.macs / 1e9, 3).c_str(),
                fixed(row.paper_gmacs, 2).c_str());
    std::printf("    %s\n", row.reading.c_str());
  }
  if (json)
    std::cout << rows.dump(2) << "\n";
  else
    std::cout << "(112x112 input; the paper's Table 8 swaps its two complexity columns: its "
                 "\"#Param(G)\" is GMACs, its \"FLOPs(M)\" millions of parameters)\n";
  return 0;
}

}  // namespace

int cmdInfo(const Argv& argv) {
  Args args(argv, {
                      {"--list", false, "list operators and architectures"},
                      {"--arch", true,
                       "architecture: a preset (msnet50, msnet-tiny, ...) with options "
                       "(msnet50:width=0.5,blocks=2-2-2-2,G=16,L=16,embedding=256,stem_stride=2,"
                       "prelu=shared)"},
                      {"--op", true, "3x3 operator; repeat to compare several"},
                      {"--input", true, "input size in pixels (default 112)"},
                      {"--modules", false, "also print parameters and MACs per unit"},
                      {"--paper", false,
                       "every model of the paper's Table 8: ours beside the paper's, and why"},
                      {"--json", false, "print JSON"},
                      {"--help", false, "this help"},
                  });
  const bool json = args.flag("--json");
  if (args.flag("--help")) {
    std::cout << "usage: msconv info --list | --arch NAME [--op OP]... [--input 112] [--json]\n"
              << args.usage();
    return 0;
  }
  if (args.flag("--paper")) return printPaperTable(json);
  if (args.flag("--list")) {
    const auto ops = nn::listOperators();
    const auto archs = nn::listArchs();
    if (json) {
      nlohmann::json j;
      for (const auto& o : ops)
        j["operators"].push_back({{"name", o.name}, {"description", o.description}});
      for (const auto& a : archs)
        j["architectures"].push_back({{"name", a.name},
                                      {"description", a.description},
                                      {"equals", nn::presetExpansion(a)},
                                      {"prelu", nn::preluSlopesName(a.prelu)},
                                      {"default_op", nn::defaultOpFor(a).str()}});
      j["device"] = deviceSummary();
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    std::cout
        << "operators (--op NAME[:key=value,...]; keys fusion, diff, kernels, r, L, G, gn):\n";
    for (const auto& o : ops) std::printf("  %-16s %s\n", o.name.c_str(), o.description.c_str());
    std::cout << "\narchitectures (--arch NAME[:key=value,...]; keys width, blocks, G, L, "
                 "embedding, stem_stride, prelu=shared|channel):\n";
    for (const auto& a : archs) {
      std::printf("  %-16s %s (default op %s; PReLU slopes %s)\n", a.name.c_str(),
                  a.description.c_str(), nn::defaultOpFor(a).str().c_str(),
                  nn::preluSlopesName(a.prelu));
      const std::string same = nn::presetExpansion(a);
      if (!same.empty()) std::printf("  %-16s   = %s\n", "", same.c_str());
    }
    std::cout << "\ndevice: " << deviceSummary() << "\n";
    return 0;
  }

  const nn::ArchSpec arch = nn::parseArch(args.required("--arch"));
  std::vector<nn::OpSpec> ops;
  for (const auto& o : args.values("--op")) ops.push_back(nn::parseOpSpec(o));
  if (ops.empty()) ops.push_back(nn::defaultOpFor(arch));
  const int input = args.integer("--input", 112);
  if (input < 32) throw Error("--input must be at least 32 pixels, got " + std::to_string(input));

  nlohmann::json rows = nlohmann::json::array();
  if (!json)
    std::printf("%-14s %-32s %12s %12s   (input %dx%d)\n", "arch", "op", "params (M)", "GMACs",
                input, input);
  for (const auto& op : ops) {
    auto model = nn::makeBackbone(arch, op);
    const nn::Complexity c = nn::measureComplexity(*model, input);
    nlohmann::json row = {{"arch", arch.str()},
                          {"op", op.str()},
                          {"input", input},
                          {"params", c.params},
                          {"trainable_params", c.trainable_params},
                          {"macs", c.macs}};
    if (args.flag("--modules")) {
      for (const auto& m : c.modules)
        row["modules"].push_back({{"name", m.name}, {"params", m.params}, {"macs", m.macs}});
    }
    rows.push_back(row);
    if (!json) {
      std::printf("%-14s %-32s %12s %12s\n", arch.str().c_str(), op.str().c_str(),
                  fixed(c.params / 1e6, 3).c_str(), fixed(c.macs / 1e9, 4).c_str());
      if (args.flag("--modules"))
        for (const auto& m : c.modules)
          std::printf("    %-42s %12s %12s\n", m.name.c_str(), fixed(m.params / 1e6, 4).c_str(),
                      fixed(m.macs / 1e9, 5).c_str());
    }
  }
  if (json) std::cout << (rows.size() == 1 ? rows[0] : rows).dump(2) << "\n";
  return 0;
}

}  // namespace msconv::cli
