#include "msconv/nn/spec.h"

#include <algorithm>
#include <sstream>

#include "msconv/error.h"

namespace msconv::nn {
namespace {

struct OpName {
  const char* name;
  OpKind kind;
  PoolFusion fusion;
  DiffTerm diff;
  const char* description;
};

// The registry. Rows of the paper's Table 6 are named forms of "msconv" with its two switches.
const OpName kOps[] = {
    {"conv", OpKind::kPlainConv, PoolFusion::kMul, DiffTerm::kSub,
     "plain 3x3 convolution, no BN or activation (iResNet's own)"},
    {"conv3x3", OpKind::kConv3x3, PoolFusion::kMul, DiffTerm::kSub,
     "grouped 3x3 convolution + BN + PReLU (baseline)"},
    {"msconv", OpKind::kMSConv, PoolFusion::kMul, DiffTerm::kSub,
     "MSConv, paper Algorithm 1 / Eq. 6: pool(U1*U2) gate, V = U2 + c*(U1-U2)"},
    {"msconv*", OpKind::kMSConv, PoolFusion::kAdd, DiffTerm::kSub,
     "MSConv* (Table 6): MO replaced by element-wise sum, SO kept"},
    {"msconv-mo", OpKind::kMSConv, PoolFusion::kFirst, DiffTerm::kSub,
     "MSConv - MO (Table 6): gate pools U1 alone, SO kept"},
    {"msconv-so", OpKind::kMSConv, PoolFusion::kMul, DiffTerm::kAdd,
     "MSConv - SO (Table 6): MO kept, V = U2 + c*(U1+U2)"},
    {"msconv-mo-so", OpKind::kMSConv, PoolFusion::kFirst, DiffTerm::kAdd,
     "MSConv - MO - SO (Table 6): gate pools U1, V = U2 + c*(U1+U2)"},
    {"msconv-official", OpKind::kMSConvOfficial, PoolFusion::kMul, DiffTerm::kSub,
     "MSConv as in the authors' code: BN+PReLU everywhere, 1x1 projection, sigmoid(a-b+1e-6)"},
    {"skconv", OpKind::kSKConv, PoolFusion::kAdd, DiffTerm::kSub,
     "SKNet selective kernel: sum fusion, softmax over two branches"},
    {"scconv", OpKind::kSCConv, PoolFusion::kMul, DiffTerm::kSub,
     "SCConv (CVPR 2023): spatial reconstruction unit, then channel reconstruction unit"},
};

const char* fusionName(PoolFusion f) {
  switch (f) {
    case PoolFusion::kMul:
      return "mul";
    case PoolFusion::kAdd:
      return "add";
    case PoolFusion::kFirst:
      return "first";
  }
  return "?";
}
const char* diffName(DiffTerm d) {
  return d == DiffTerm::kSub ? "sub" : "add";
}

std::string kernelsName(int d1, int d2) {
  auto k = [](int d) { return "k" + std::to_string(2 * d + 1); };
  return k(d1) + k(d2);
}

int parsePositive(const std::string& op, const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    int v = std::stoi(value, &used);
    if (used == value.size() && v > 0) return v;
  } catch (const std::exception&) {
  }
  throw Error("operator '" + op + "': option '" + key + "' wants a positive integer, got '" +
              value + "'");
}

bool hasGate(OpKind k) {
  return k == OpKind::kMSConv || k == OpKind::kMSConvOfficial || k == OpKind::kSKConv;
}

}  // namespace

bool OpSpec::operator==(const OpSpec& o) const {
  return kind == o.kind && fusion == o.fusion && diff == o.diff && dilation1 == o.dilation1 &&
         dilation2 == o.dilation2 && reduction == o.reduction && min_dim == o.min_dim &&
         groups == o.groups && gn_groups == o.gn_groups;
}

std::string OpSpec::baseName() const {
  for (const auto& e : kOps) {
    if (e.kind != kind) continue;
    if (kind == OpKind::kMSConv && (e.fusion != fusion || e.diff != diff)) continue;
    return e.name;
  }
  return "?";
}

std::string OpSpec::str() const {
  const std::string base = baseName();
  OpSpec ref = parseOpSpec(base);
  std::vector<std::string> opts;
  if (kind == OpKind::kMSConvOfficial) {
    if (fusion != ref.fusion) opts.push_back(std::string("fusion=") + fusionName(fusion));
    if (diff != ref.diff) opts.push_back(std::string("diff=") + diffName(diff));
  }
  if (dilation1 != ref.dilation1 || dilation2 != ref.dilation2)
    opts.push_back("kernels=" + kernelsName(dilation1, dilation2));
  if (reduction != ref.reduction) opts.push_back("r=" + std::to_string(reduction));
  if (min_dim != ref.min_dim) opts.push_back("L=" + std::to_string(min_dim));
  if (groups != ref.groups) opts.push_back("G=" + std::to_string(groups));
  if (gn_groups != ref.gn_groups) opts.push_back("gn=" + std::to_string(gn_groups));
  std::string out = base;
  for (size_t i = 0; i < opts.size(); ++i) out += (i == 0 ? ":" : ",") + opts[i];
  return out;
}

OpSpec parseOpSpec(const std::string& text) {
  const auto colon = text.find(':');
  const std::string name = text.substr(0, colon);
  const OpName* found = nullptr;
  for (const auto& e : kOps)
    if (name == e.name) found = &e;
  if (!found) {
    std::string known;
    for (const auto& e : kOps) known += std::string(known.empty() ? "" : ", ") + e.name;
    throw Error("unknown operator '" + name + "' (known: " + known + ")");
  }
  OpSpec spec;
  spec.kind = found->kind;
  spec.fusion = found->fusion;
  spec.diff = found->diff;
  if (colon == std::string::npos) return spec;

  std::stringstream opts(text.substr(colon + 1));
  std::string item;
  while (std::getline(opts, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("operator '" + name + "': option '" + item + "' is not key=value");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    auto unsupported = [&] { return Error("operator '" + name + "' has no option '" + key + "'"); };
    if (key == "fusion" || key == "diff") {
      if (!spec.isMSConvFamily()) throw unsupported();
      if (key == "fusion") {
        if (value == "mul")
          spec.fusion = PoolFusion::kMul;
        else if (value == "add")
          spec.fusion = PoolFusion::kAdd;
        else if (value == "first")
          spec.fusion = PoolFusion::kFirst;
        else
          throw Error("operator '" + name + "': fusion must be mul, add or first, got '" + value +
                      "'");
      } else {
        if (value == "sub")
          spec.diff = DiffTerm::kSub;
        else if (value == "add")
          spec.diff = DiffTerm::kAdd;
        else
          throw Error("operator '" + name + "': diff must be sub or add, got '" + value + "'");
      }
    } else if (key == "kernels") {
      if (!hasGate(spec.kind)) throw unsupported();
      if (value == "k3k3")
        spec.dilation1 = 1, spec.dilation2 = 1;
      else if (value == "k3k5")
        spec.dilation1 = 1, spec.dilation2 = 2;
      else if (value == "k5k3")
        spec.dilation1 = 2, spec.dilation2 = 1;
      else if (value == "k5k7")
        spec.dilation1 = 2, spec.dilation2 = 3;
      else
        throw Error("operator '" + name + "': kernels must be k3k3, k3k5, k5k3 or k5k7, got '" +
                    value + "'");
    } else if (key == "r") {
      if (!hasGate(spec.kind)) throw unsupported();
      spec.reduction = parsePositive(name, key, value);
    } else if (key == "L") {
      if (!hasGate(spec.kind)) throw unsupported();
      spec.min_dim = parsePositive(name, key, value);
    } else if (key == "G") {
      if (spec.kind == OpKind::kPlainConv || spec.kind == OpKind::kSCConv) throw unsupported();
      spec.groups = parsePositive(name, key, value);
    } else if (key == "gn") {
      if (spec.kind != OpKind::kSCConv) throw unsupported();
      spec.gn_groups = parsePositive(name, key, value);
    } else {
      throw Error("operator '" + name + "': unknown option '" + key +
                  "' (options: fusion, diff, kernels, r, L, G, gn)");
    }
  }
  // A paper-form spec whose switches match another named row prints as that row (see str()).
  return spec;
}

std::vector<NamedEntry> listOperators() {
  std::vector<NamedEntry> out;
  for (const auto& e : kOps) out.push_back({e.name, e.description});
  return out;
}

std::vector<ArchSpec> listArchs() {
  std::vector<ArchSpec> a;
  a.push_back({"msnet26",
               Family::kMSNet,
               {2, 2, 2, 2},
               1.0,
               32,
               32,
               512,
               "MSNet-26 (ResNeXt-style bottlenecks)"});
  a.push_back({"msnet50",
               Family::kMSNet,
               {3, 4, 6, 3},
               1.0,
               32,
               32,
               512,
               "MSNet-50, the paper's backbone"});
  a.push_back({"msnet101", Family::kMSNet, {3, 4, 23, 3}, 1.0, 32, 32, 512, "MSNet-101"});
  a.push_back({"msnet-small",
               Family::kMSNet,
               {1, 2, 2, 1},
               0.25,
               8,
               16,
               512,
               "CPU preset: MSNet at 1/4 width, [1,2,2,1] units"});
  a.push_back({"msnet-tiny",
               Family::kMSNet,
               {1, 1, 1, 1},
               0.125,
               8,
               8,
               512,
               "CPU preset: MSNet at 1/8 width, one unit per stage (the demo's)"});
  a.push_back(
      {"iresnet18", Family::kIResNet, {2, 2, 2, 2}, 1.0, 32, 32, 512, "insightface iResNet-18"});
  a.push_back(
      {"iresnet34", Family::kIResNet, {3, 4, 6, 3}, 1.0, 32, 32, 512, "insightface iResNet-34"});
  a.push_back(
      {"iresnet50", Family::kIResNet, {3, 4, 14, 3}, 1.0, 32, 32, 512, "insightface iResNet-50"});
  a.push_back({"iresnet100",
               Family::kIResNet,
               {3, 13, 30, 3},
               1.0,
               32,
               32,
               512,
               "insightface iResNet-100"});
  // iResNet runs its stem at full 112 x 112 resolution; narrow layers at that size are memory-bound
  // on a CPU (an 8-channel 112 x 112 layer costs more than the rest of the network), so the CPU
  // presets give the stem stride 2 and size the head for the 4 x 4 map that results.
  a.push_back({"iresnet-small",
               Family::kIResNet,
               {1, 2, 2, 1},
               0.25,
               8,
               16,
               512,
               "CPU preset: iResNet at 1/4 width, [1,2,2,1] blocks, stem stride 2",
               2});
  a.push_back({"iresnet-tiny",
               Family::kIResNet,
               {1, 1, 1, 1},
               0.125,
               4,
               8,
               512,
               "CPU preset: iResNet at 1/8 width, one block per stage, stem stride 2",
               2});
  return a;
}

ArchSpec parseArch(const std::string& name) {
  std::string known;
  for (const auto& a : listArchs()) {
    if (a.name == name) return a;
    known += (known.empty() ? "" : ", ") + a.name;
  }
  throw Error("unknown architecture '" + name + "' (known: " + known + ")");
}

OpSpec defaultOpFor(const ArchSpec& arch) {
  return parseOpSpec(arch.family == Family::kMSNet ? "msconv-official" : "conv");
}

}  // namespace msconv::nn
