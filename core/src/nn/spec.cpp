#include "msconv/nn/spec.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
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
    {"ghost", OpKind::kGhost, PoolFusion::kMul, DiffTerm::kSub,
     "GhostNet's Ghost module: 3x3 primary conv to C/s maps, cheap depthwise d x d for the rest"},
    {"ghostv2", OpKind::kGhostV2, PoolFusion::kMul, DiffTerm::kSub,
     "GhostNetV2: Ghost module times DFC attention (1xK, Kx1 depthwise on a 2x down-sampled map)"},
    {"pconv", OpKind::kPConv, PoolFusion::kMul, DiffTerm::kSub,
     "FasterNet's block: partial 3x3 conv on C/div channels, two point-wise convs, residual"},
    {"star", OpKind::kStar, PoolFusion::kMul, DiffTerm::kSub,
     "StarNet's block: depthwise KxK, two 1x1 branches, ReLU6(a) * b, 1x1, depthwise KxK"},
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

// `text` as a whole number in [lo, hi], or nothing.
std::optional<int> wholeNumber(const std::string& text, long lo, long hi) {
  try {
    size_t used = 0;
    const long v = std::stol(text, &used);
    if (used == text.size() && v >= lo && v <= hi) return static_cast<int>(v);
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

int parsePositive(const std::string& op, const std::string& key, const std::string& value) {
  if (const auto v = wholeNumber(value, 1, std::numeric_limits<int>::max())) return *v;
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
         groups == o.groups && gn_groups == o.gn_groups && ratio == o.ratio && dw == o.dw &&
         kernel == o.kernel && div == o.div && mlp == o.mlp;
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
  if (ratio != ref.ratio) opts.push_back("s=" + std::to_string(ratio));
  if (dw != ref.dw) opts.push_back("d=" + std::to_string(dw));
  if (kernel != ref.kernel) opts.push_back("k=" + std::to_string(kernel));
  if (div != ref.div) opts.push_back("div=" + std::to_string(div));
  if (mlp != ref.mlp) opts.push_back("mlp=" + std::to_string(mlp));
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
  // The peers' own defaults: StarNet's 7x7 depthwise and 4x MLP, GhostNetV2's 5-wide DFC.
  spec.kernel = spec.kind == OpKind::kStar ? 7 : 5;
  spec.mlp = spec.kind == OpKind::kStar ? 4 : 2;
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
      if (spec.kind != OpKind::kConv3x3 && !hasGate(spec.kind)) throw unsupported();
      spec.groups = parsePositive(name, key, value);
    } else if (key == "gn") {
      if (spec.kind != OpKind::kSCConv) throw unsupported();
      spec.gn_groups = parsePositive(name, key, value);
    } else if (key == "s" || key == "d") {
      if (spec.kind != OpKind::kGhost && spec.kind != OpKind::kGhostV2) throw unsupported();
      const int v = parsePositive(name, key, value);
      if (key == "s" && v < 2)
        throw Error("operator '" + name + "': option 's' must be at least 2 (s = 1 leaves no " +
                    "channel to the cheap operation), got " + value);
      if (key == "d" && v % 2 == 0)
        throw Error("operator '" + name + "': option 'd' must be an odd kernel size, got " + value);
      (key == "s" ? spec.ratio : spec.dw) = v;
    } else if (key == "k") {
      if (spec.kind != OpKind::kGhostV2 && spec.kind != OpKind::kStar) throw unsupported();
      spec.kernel = parsePositive(name, key, value);
      if (spec.kernel % 2 == 0)
        throw Error("operator '" + name + "': option 'k' must be an odd kernel size, got " + value);
    } else if (key == "div") {
      if (spec.kind != OpKind::kPConv) throw unsupported();
      spec.div = parsePositive(name, key, value);
    } else if (key == "mlp") {
      if (spec.kind != OpKind::kPConv && spec.kind != OpKind::kStar) throw unsupported();
      spec.mlp = parsePositive(name, key, value);
    } else {
      throw Error("operator '" + name + "': unknown option '" + key +
                  "' (options: fusion, diff, kernels, r, L, G, gn, s, d, k, div, mlp)");
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

const char* preluSlopesName(PReluSlopes p) {
  return p == PReluSlopes::kShared ? "shared" : "channel";
}

namespace {

ArchSpec preset(std::string name, Family family, std::vector<int> blocks, double width, int G,
                int L, int stem_stride, std::string description) {
  ArchSpec a;
  a.name = std::move(name);
  a.family = family;
  a.blocks = std::move(blocks);
  a.width = width;
  a.op_groups = G;
  a.op_min_dim = L;
  a.embedding = 512;
  a.stem_stride = stem_stride;
  // The slopes each frame's authors use: one shared slope in MSNet (nn.PReLU()), one per channel
  // in iResNet (nn.PReLU(planes)).
  a.prelu = family == Family::kIResNet ? PReluSlopes::kPerChannel : PReluSlopes::kShared;
  a.description = std::move(description);
  return a;
}

// The full-size model each family's presets are written against in presetExpansion.
const char* familyBase(Family f) {
  switch (f) {
    case Family::kMSNet:
      return "msnet50";
    case Family::kIResNet:
      return "iresnet50";
    case Family::kFasterNet:
      return "fasternet-s";
  }
  return "msnet50";
}

std::string widthText(double w) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", w);
  if (std::strtod(buf, nullptr) != w) std::snprintf(buf, sizeof buf, "%.17g", w);
  return buf;
}

std::string blocksText(const std::vector<int>& b) {
  std::string out;
  for (size_t i = 0; i < b.size(); ++i) out += (i ? "-" : "") + std::to_string(b[i]);
  return out;
}

// The options of `a` that differ from `ref`, as "key=value" in the canonical order.
std::vector<std::string> archOptions(const ArchSpec& a, const ArchSpec& ref) {
  std::vector<std::string> o;
  if (a.width != ref.width) o.push_back("width=" + widthText(a.width));
  if (a.blocks != ref.blocks) o.push_back("blocks=" + blocksText(a.blocks));
  if (a.op_groups != ref.op_groups) o.push_back("G=" + std::to_string(a.op_groups));
  if (a.op_min_dim != ref.op_min_dim) o.push_back("L=" + std::to_string(a.op_min_dim));
  if (a.embedding != ref.embedding) o.push_back("embedding=" + std::to_string(a.embedding));
  if (a.stem_stride != ref.stem_stride) o.push_back("stem_stride=" + std::to_string(a.stem_stride));
  if (a.prelu != ref.prelu) o.push_back(std::string("prelu=") + preluSlopesName(a.prelu));
  if (a.act != ref.act) o.push_back(a.act == FrameAct::kGELU ? "act=gelu" : "act=relu");
  return o;
}

std::string joinOptions(const std::string& base, const std::vector<std::string>& opts) {
  std::string out = base;
  for (size_t i = 0; i < opts.size(); ++i) out += (i == 0 ? ":" : ",") + opts[i];
  return out;
}

const ArchSpec* findPreset(const std::vector<ArchSpec>& presets, const std::string& name) {
  for (const auto& p : presets)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace

std::vector<ArchSpec> listArchs() {
  std::vector<ArchSpec> a;
  const Family M = Family::kMSNet, I = Family::kIResNet;
  a.push_back(
      preset("msnet26", M, {2, 2, 2, 2}, 1.0, 32, 32, 2, "MSNet-26 (ResNeXt-style bottlenecks)"));
  a.push_back(preset("msnet50", M, {3, 4, 6, 3}, 1.0, 32, 32, 2, "MSNet-50, the paper's backbone"));
  a.push_back(preset("msnet101", M, {3, 4, 23, 3}, 1.0, 32, 32, 2, "MSNet-101"));
  a.push_back(preset("msnet-small", M, {1, 2, 2, 1}, 0.25, 8, 16, 2,
                     "CPU preset: MSNet at 1/4 width, [1,2,2,1] units"));
  a.push_back(preset("msnet-tiny", M, {1, 1, 1, 1}, 0.125, 8, 8, 2,
                     "CPU preset: MSNet at 1/8 width, one unit per stage (the demo's)"));
  a.push_back(preset("iresnet18", I, {2, 2, 2, 2}, 1.0, 32, 32, 1, "insightface iResNet-18"));
  a.push_back(preset("iresnet34", I, {3, 4, 6, 3}, 1.0, 32, 32, 1, "insightface iResNet-34"));
  a.push_back(preset("iresnet50", I, {3, 4, 14, 3}, 1.0, 32, 32, 1, "insightface iResNet-50"));
  a.push_back(preset("iresnet100", I, {3, 13, 30, 3}, 1.0, 32, 32, 1, "insightface iResNet-100"));
  // iResNet runs its stem at full 112 x 112 resolution; narrow layers at that size are memory-bound
  // on a CPU (an 8-channel 112 x 112 layer costs more than the rest of the network), so the CPU
  // presets give the stem stride 2 and size the head for the 4 x 4 map that results.
  a.push_back(preset("iresnet-small", I, {1, 2, 2, 1}, 0.25, 8, 16, 2,
                     "CPU preset: iResNet at 1/4 width, [1,2,2,1] blocks, stem stride 2"));
  a.push_back(preset("iresnet-tiny", I, {1, 1, 1, 1}, 0.125, 4, 8, 2,
                     "CPU preset: iResNet at 1/8 width, one block per stage, stem stride 2"));
  // FasterNet (CVPR 2023) at 112 x 112 with a 512-d embedding: 4x4 patch stem, stages of
  // [1, 2, 13, 2] blocks at 128 ... 1024 channels (S), 2x2 merges, 1x1 to 1280 + act, Linear.
  const Family F = Family::kFasterNet;
  a.push_back(preset("fasternet-s", F, {1, 2, 13, 2}, 1.0, 32, 32, 4,
                     "FasterNet-S (the paper's Table 7 peer), ReLU"));
  ArchSpec t0 = preset("fasternet-t0", F, {1, 2, 8, 2}, 0.3125, 8, 8, 4,
                       "FasterNet-T0 (40 ... 320 channels), GELU: small enough for the CPU demo");
  t0.act = FrameAct::kGELU;
  a.push_back(t0);
  return a;
}

bool ArchSpec::operator==(const ArchSpec& o) const {
  return family == o.family && blocks == o.blocks && width == o.width && op_groups == o.op_groups &&
         op_min_dim == o.op_min_dim && embedding == o.embedding && stem_stride == o.stem_stride &&
         prelu == o.prelu && act == o.act;
}

std::string ArchSpec::str() const {
  const auto presets = listArchs();
  for (const auto& p : presets)
    if (p == *this) return p.name;
  const ArchSpec* base = findPreset(presets, name);
  if (!base || base->family != family) base = findPreset(presets, familyBase(family));
  return joinOptions(base->name, archOptions(*this, *base));
}

std::string presetExpansion(const ArchSpec& p) {
  const auto presets = listArchs();
  const ArchSpec* base = findPreset(presets, familyBase(p.family));
  if (p.name == base->name) return {};
  return joinOptions(base->name, archOptions(p, *base));
}

ArchSpec parseArch(const std::string& text) {
  const auto colon = text.find(':');
  const std::string name = text.substr(0, colon);
  const auto presets = listArchs();
  const ArchSpec* found = findPreset(presets, name);
  if (!found) {
    std::string known;
    for (const auto& a : presets) known += (known.empty() ? "" : ", ") + a.name;
    throw Error("unknown architecture '" + name + "' (known: " + known + ")");
  }
  ArchSpec a = *found;
  if (colon == std::string::npos) return a;
  const std::string where = "architecture '" + text + "'";
  auto positive = [&](const std::string& key, const std::string& value, int max) {
    if (const auto v = wholeNumber(value, 1, max)) return *v;
    throw Error(where + ": option '" + key + "' wants a whole number from 1 to " +
                std::to_string(max) + ", got '" + value + "'");
  };
  std::stringstream opts(text.substr(colon + 1));
  std::string item;
  while (std::getline(opts, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(where + ": option '" + item + "' is not key=value");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "width") {
      char* end = nullptr;
      const double w = value.empty() ? 0.0 : std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(w > 0.0) || w > 64.0)
        throw Error(where + ": option 'width' wants a number above 0 (at most 64), got '" + value +
                    "'");
      a.width = w;
    } else if (key == "blocks") {
      std::vector<int> blocks;
      std::stringstream parts(value);
      std::string part;
      while (std::getline(parts, part, '-')) {
        const auto v = wholeNumber(part, 1, 1000);
        if (!v) {
          blocks.clear();
          break;
        }
        blocks.push_back(*v);
      }
      if (blocks.size() != 4 || value.back() == '-')
        throw Error(where +
                    ": option 'blocks' wants four unit counts of at least 1, as 3-4-6-3, "
                    "got '" +
                    value + "'");
      a.blocks = blocks;
    } else if (key == "G") {
      a.op_groups = positive(key, value, 4096);
    } else if (key == "L") {
      a.op_min_dim = positive(key, value, 65536);
    } else if (key == "embedding") {
      a.embedding = positive(key, value, 65536);
    } else if (key == "stem_stride") {
      a.stem_stride = positive(key, value, 4);
    } else if (key == "prelu") {
      if (value == "shared")
        a.prelu = PReluSlopes::kShared;
      else if (value == "channel")
        a.prelu = PReluSlopes::kPerChannel;
      else
        throw Error(where + ": option 'prelu' must be shared or channel, got '" + value + "'");
    } else if (key == "act") {
      if (a.family != Family::kFasterNet)
        throw Error(where + ": option 'act' is FasterNet's (its MLPs' activation)");
      if (value == "relu")
        a.act = FrameAct::kReLU;
      else if (value == "gelu")
        a.act = FrameAct::kGELU;
      else
        throw Error(where + ": option 'act' must be relu or gelu, got '" + value + "'");
    } else {
      throw Error(where + ": unknown option '" + key +
                  "' (options: width, blocks, G, L, embedding, stem_stride, prelu, act)");
    }
  }
  return a;
}

OpSpec defaultOpFor(const ArchSpec& arch) {
  switch (arch.family) {
    case Family::kMSNet:
      return parseOpSpec("msconv-official");
    case Family::kIResNet:
      return parseOpSpec("conv");
    case Family::kFasterNet:
      return parseOpSpec("pconv");
  }
  return parseOpSpec("conv");
}

}  // namespace msconv::nn
