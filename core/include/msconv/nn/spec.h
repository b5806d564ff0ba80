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
  kGhost,           // "ghost": GhostNet's Ghost module
  kGhostV2,         // "ghostv2": GhostNetV2's Ghost module with DFC attention
  kPConv,           // "pconv": FasterNet's block (partial 3x3 convolution, two point-wise)
  kStar,            // "star": StarNet's block (the star operation)
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
  int ratio = 2;       // Ghost: s, C/s intrinsic maps
  int dw = 3;          // Ghost: d, the cheap depthwise operation's kernel
  int kernel = 5;      // GhostV2: the DFC attention's 1xK / Kx1 kernel; Star: the depthwise K x K
  int div = 4;         // PConv: the 3x3 convolution sees C / div channels
  int mlp = 2;         // PConv, Star: hidden width of the point-wise pair, in multiples of C

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
// diff=sub|add, kernels=k3k3|k3k5|k5k3|k5k7, r, L, G, gn; s, d (ghost, ghostv2), k (ghostv2,
// star; odd), div, mlp (pconv, star). Throws msconv::Error naming the bad part.
OpSpec parseOpSpec(const std::string& text);

struct NamedEntry {
  std::string name;
  std::string description;
};
std::vector<NamedEntry> listOperators();

enum class Family { kMSNet, kIResNet, kFasterNet };

// FasterNet's activation (its MLP and the head's projection): ReLU in FasterNet-S, GELU in T0.
enum class FrameAct { kReLU, kGELU };

// How many slopes each PReLU of a frame (and of the operators inside it) learns: one shared slope
// (torch.nn.PReLU(), weight [1]) or one per channel (torch.nn.PReLU(C), weight [C]). The authors'
// MSNet and MSConv use one shared slope everywhere; insightface's iResNet one per channel.
// Checkpoints written before this was a property hold per-channel slopes in every frame.
enum class PReluSlopes { kShared, kPerChannel };
const char* preluSlopesName(PReluSlopes p);  // "shared", "channel"

// A backbone: family, depth, width and the options of its layers. Presets are names like any
// other; "NAME:key=value,..." changes a preset's options (keys: width, blocks, G, L, embedding,
// stem_stride, prelu; act for FasterNet), e.g. "msnet50:width=0.5,blocks=2-2-2-2".
struct ArchSpec {
  std::string name;  // the preset this spec starts from ("msnet50", "msnet-tiny", ...)
  Family family = Family::kMSNet;
  std::vector<int> blocks;  // units per stage (four stages, each at least one unit)
  double width = 1.0;       // channel multiplier on the full-size widths
  int op_groups = 32;       // default G for the 3x3 operator
  int op_min_dim = 32;      // default L
  int embedding = 512;
  std::string description;
  int stem_stride =
      1;  // MSNet: the 7x7 stem's stride (2); iResNet: 1 as insightface (CPU presets 2)
  PReluSlopes prelu = PReluSlopes::kShared;
  FrameAct act = FrameAct::kReLU;  // FasterNet: the MLPs' and head's activation

  // The canonical text: the name of a preset with exactly this shape, else the preset it started
  // from with ":key=value,..." for every option that differs. parseArch(str()) == *this.
  std::string str() const;
  // Equal shapes (every option; names and descriptions are not compared).
  bool operator==(const ArchSpec& o) const;
  bool operator!=(const ArchSpec& o) const { return !(*this == o); }
};

// "preset" or "preset:key=value,...". Throws msconv::Error for unknown presets, unknown keys and
// values that cannot build a network (width 0, a negative unit count...), naming the key.
ArchSpec parseArch(const std::string& text);
// The presets, in registry order.
std::vector<ArchSpec> listArchs();
// The preset's definition as options on its family's full-size model ("msnet50:width=0.125,...");
// empty for the full-size models themselves.
std::string presetExpansion(const ArchSpec& preset);
// The operator an architecture uses when none is named: msconv-official for MSNet, iResNet's plain
// convolution for iResNet, the partial-convolution block for FasterNet.
OpSpec defaultOpFor(const ArchSpec& arch);

}  // namespace msconv::nn
