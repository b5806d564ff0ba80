// Operator and architecture descriptions: plain values, free of LibTorch, parsed from and printed
// to the names that configs, the CLI, the GUI and the tests share.
#pragma once

#include <string>
#include <vector>

namespace msconv::nn {

enum class OpKind {
  kPlainConv,       // "conv": a plain 3x3 convolution (iResNet's own), no BN or activation
  kConv3x3,         // "conv3x3": grouped 3x3 + BN + PReLU, the baseline
  kMSConv,          // "msconv": the paper's Algorithm 1 / Eq. 6
  kMSConvOfficial,  // "msconv-official": the authors' layer details
  kSKConv,          // "skconv": SKNet's selective kernel
  kSCConv,          // "scconv": SCConv's SRU then CRU
};

// What the gate pools: U1*U2 (MO), U1+U2 (SKNet's sum), or U1 alone.
enum class PoolFusion { kMul, kAdd, kFirst };
// The difference term in V = U2 + c * D: U1 - U2 (SO) or U1 + U2.
enum class DiffTerm { kSub, kAdd };

// A 3x3 operator with its options. Zero in groups / min_dim means "the architecture's default".
struct OpSpec {
  OpKind kind = OpKind::kMSConvOfficial;
  PoolFusion fusion = PoolFusion::kMul;
  DiffTerm diff = DiffTerm::kSub;
  int dilation1 = 1;   // branch 1: 3x3 with this dilation (K3 = 1, K5 = 2, K7 = 3)
  int dilation2 = 2;   // branch 2
  int reduction = 16;  // r: d = max(C / r, L)
  int min_dim = 0;     // L (0: architecture default, 32 at full width)
  int groups = 0;      // G (0: architecture default, 32 at full width)
  int gn_groups = 4;   // SCConv's SRU group norm groups

  // The canonical text: a registry name, then ":key=value,..." for options that differ from that
  // name's defaults. parseOpSpec(str()) == *this.
  std::string str() const;
  // The registry name only ("msconv-official", "msconv*", ...).
  std::string baseName() const;
  bool isMSConvFamily() const { return kind == OpKind::kMSConv || kind == OpKind::kMSConvOfficial; }
  bool operator==(const OpSpec& o) const;
  bool operator!=(const OpSpec& o) const { return !(*this == o); }
};

// "name" or "name:key=value,key=value". Names: see listOperators(). Keys: fusion=mul|add|first,
// diff=sub|add, kernels=k3k3|k3k5|k5k3|k5k7, r, L, G, gn. Throws msconv::Error naming the bad part.
OpSpec parseOpSpec(const std::string& text);

struct NamedEntry {
  std::string name;
  std::string description;
};
std::vector<NamedEntry> listOperators();

enum class Family { kMSNet, kIResNet };

// A backbone: family, depth and width. Presets are names like any other.
struct ArchSpec {
  std::string name;  // registry name ("msnet50", "msnet-tiny", ...)
  Family family = Family::kMSNet;
  std::vector<int> blocks;  // units per stage
  double width = 1.0;       // channel multiplier on the full-size widths
  int op_groups = 32;       // default G for the 3x3 operator
  int op_min_dim = 32;      // default L
  int embedding = 512;
  std::string description;
  int stem_stride = 1;  // iResNet: 1 as insightface; its CPU presets use 2 (see listArchs)
};

ArchSpec parseArch(const std::string& name);  // throws msconv::Error for unknown names
std::vector<ArchSpec> listArchs();
// The operator an architecture uses when none is named: msconv-official for MSNet, iResNet's plain
// convolution for iResNet.
OpSpec defaultOpFor(const ArchSpec& arch);

}  // namespace msconv::nn
