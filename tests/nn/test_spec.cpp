#include <gtest/gtest.h>

#include "msconv/error.h"
#include "msconv/nn/spec.h"

using namespace msconv;
using namespace msconv::nn;

namespace {
// The message of the msconv::Error that f throws, or "no error".
template <typename F>
std::string errorText(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST(OpSpec, EveryRegistryNameRoundTrips) {
  for (const auto& e : listOperators()) {
    const OpSpec s = parseOpSpec(e.name);
    EXPECT_EQ(s.str(), e.name);
    EXPECT_EQ(parseOpSpec(s.str()), s);
  }
}

TEST(OpSpec, AblationRowsAreTheTwoSwitches) {
  EXPECT_EQ(parseOpSpec("msconv").fusion, PoolFusion::kMul);
  EXPECT_EQ(parseOpSpec("msconv").diff, DiffTerm::kSub);
  EXPECT_EQ(parseOpSpec("msconv*").fusion, PoolFusion::kAdd);
  EXPECT_EQ(parseOpSpec("msconv-mo").fusion, PoolFusion::kFirst);
  EXPECT_EQ(parseOpSpec("msconv-so").diff, DiffTerm::kAdd);
  EXPECT_EQ(parseOpSpec("msconv-mo-so").fusion, PoolFusion::kFirst);
  EXPECT_EQ(parseOpSpec("msconv-mo-so").diff, DiffTerm::kAdd);
  // Switches written as options on the paper form print as the named row.
  EXPECT_EQ(parseOpSpec("msconv:fusion=add").str(), "msconv*");
  EXPECT_EQ(parseOpSpec("msconv:fusion=first,diff=add").str(), "msconv-mo-so");
  // On the authors' form they stay options.
  EXPECT_EQ(parseOpSpec("msconv-official:fusion=add").str(), "msconv-official:fusion=add");
}

TEST(OpSpec, OptionsRoundTrip) {
  const OpSpec s = parseOpSpec("msconv-official:kernels=k5k7,r=8,L=16,G=16,diff=add");
  EXPECT_EQ(s.dilation1, 2);
  EXPECT_EQ(s.dilation2, 3);
  EXPECT_EQ(s.reduction, 8);
  EXPECT_EQ(s.min_dim, 16);
  EXPECT_EQ(s.groups, 16);
  EXPECT_EQ(parseOpSpec(s.str()), s);
  EXPECT_EQ(parseOpSpec("skconv:kernels=k5k3").dilation1, 2);
  EXPECT_EQ(parseOpSpec("skconv:kernels=k3k3").dilation2, 1);
  EXPECT_EQ(parseOpSpec("scconv:gn=16").gn_groups, 16);
}

TEST(OpSpec, BadNamesAndOptionsAreClearErrors) {
  auto message = [](const std::string& text) { return errorText([&] { parseOpSpec(text); }); };
  EXPECT_NE(message("msconvv").find("unknown operator 'msconvv'"), std::string::npos);
  EXPECT_NE(message("skconv:fusion=mul").find("has no option 'fusion'"), std::string::npos);
  EXPECT_NE(message("msconv:kernels=k9k9").find("kernels must be"), std::string::npos);
  EXPECT_NE(message("msconv:r=0").find("'r' wants a positive integer"), std::string::npos);
  EXPECT_NE(message("msconv:r").find("not key=value"), std::string::npos);
  EXPECT_NE(message("conv:G=4").find("has no option 'G'"), std::string::npos);
}

TEST(ArchSpec, RegistryAndErrors) {
  EXPECT_EQ(parseArch("msnet50").blocks, (std::vector<int>{3, 4, 6, 3}));
  EXPECT_EQ(parseArch("msnet101").blocks, (std::vector<int>{3, 4, 23, 3}));
  EXPECT_EQ(parseArch("iresnet100").blocks, (std::vector<int>{3, 13, 30, 3}));
  EXPECT_EQ(parseArch("iresnet50").family, Family::kIResNet);
  EXPECT_EQ(defaultOpFor(parseArch("msnet-tiny")).str(), "msconv-official");
  EXPECT_EQ(defaultOpFor(parseArch("iresnet18")).str(), "conv");
  EXPECT_THROW(parseArch("resnet50"), Error);
}

TEST(ArchSpec, OptionsRoundTripAndPresetsAreNamesLikeAnyOther) {
  for (const auto& a : listArchs()) {
    SCOPED_TRACE(a.name);
    EXPECT_EQ(a.str(), a.name);
    EXPECT_EQ(parseArch(a.str()), a);
    // Each preset is its family's full-size model with options, and prints as its own name.
    const std::string expansion = presetExpansion(a);
    if (a.name == "msnet50" || a.name == "iresnet50" || a.name == "fasternet-s") {
      EXPECT_EQ(expansion, "");
    } else {
      EXPECT_EQ(parseArch(expansion), a) << expansion;
      EXPECT_EQ(parseArch(expansion).str(), a.name);
    }
  }
  EXPECT_EQ(presetExpansion(parseArch("msnet-tiny")), "msnet50:width=0.125,blocks=1-1-1-1,G=8,L=8");
  EXPECT_EQ(parseArch("msnet50:blocks=2-2-2-2").str(), "msnet26");
  EXPECT_EQ(presetExpansion(parseArch("fasternet-t0")),
            "fasternet-s:width=0.3125,blocks=1-2-8-2,G=8,L=8,act=gelu");
  EXPECT_THROW(parseArch("msnet50:act=gelu"), Error);  // FasterNet's option only
  const ArchSpec a = parseArch(
      "msnet50:width=0.5,blocks=2-3-4-1,G=16,L=16,embedding=256,"
      "stem_stride=1,prelu=channel");
  EXPECT_EQ(a.width, 0.5);
  EXPECT_EQ(a.blocks, (std::vector<int>{2, 3, 4, 1}));
  EXPECT_EQ(a.op_groups, 16);
  EXPECT_EQ(a.embedding, 256);
  EXPECT_EQ(a.stem_stride, 1);
  EXPECT_EQ(a.prelu, PReluSlopes::kPerChannel);
  EXPECT_EQ(a.str(),
            "msnet50:width=0.5,blocks=2-3-4-1,G=16,L=16,embedding=256,stem_stride=1,prelu=channel");
  EXPECT_EQ(parseArch(a.str()), a);
  // Options on a preset are written against that preset; key order does not matter.
  EXPECT_EQ(parseArch("msnet-tiny:embedding=128").str(), "msnet-tiny:embedding=128");
  EXPECT_EQ(parseArch("msnet-tiny:L=16,G=4"), parseArch("msnet-tiny:G=4,L=16"));
  // The frames' slopes: one shared slope in MSNet, one per channel in iResNet.
  EXPECT_EQ(parseArch("msnet101").prelu, PReluSlopes::kShared);
  EXPECT_EQ(parseArch("iresnet-tiny").prelu, PReluSlopes::kPerChannel);
}

TEST(ArchSpec, ShapesThatCannotBeBuiltNameTheKey) {
  auto message = [](const std::string& text) { return errorText([&] { parseArch(text); }); };
  EXPECT_NE(message("msnet50:width=0").find("option 'width'"), std::string::npos);
  EXPECT_NE(message("msnet50:width=abc").find("option 'width'"), std::string::npos);
  EXPECT_NE(message("msnet50:blocks=3-4--6").find("option 'blocks'"), std::string::npos);
  EXPECT_NE(message("msnet50:blocks=3-4-6").find("four unit counts"), std::string::npos);
  EXPECT_NE(message("msnet50:blocks=3-4-6-0").find("option 'blocks'"), std::string::npos);
  EXPECT_NE(message("msnet50:blocks=3-4-6--3").find("option 'blocks'"), std::string::npos);
  EXPECT_NE(message("msnet50:G=-2").find("option 'G'"), std::string::npos);
  EXPECT_NE(message("msnet50:embedding=0").find("option 'embedding'"), std::string::npos);
  EXPECT_NE(message("msnet50:prelu=some").find("option 'prelu'"), std::string::npos);
  EXPECT_NE(message("msnet50:depth=3").find("unknown option 'depth'"), std::string::npos);
  EXPECT_NE(message("msnet50:width").find("not key=value"), std::string::npos);
  EXPECT_NE(message("resnet50:width=1").find("unknown architecture 'resnet50'"), std::string::npos);
}

TEST(OpSpec, PeersOptionsAndErrors) {
  EXPECT_EQ(parseOpSpec("star").kernel, 7);
  EXPECT_EQ(parseOpSpec("star").mlp, 4);
  EXPECT_EQ(parseOpSpec("ghostv2").kernel, 5);
  EXPECT_EQ(parseOpSpec("pconv").div, 4);
  EXPECT_EQ(parseOpSpec("pconv").mlp, 2);
  for (const char* text : {"ghost:s=3,d=5", "ghostv2:k=7", "pconv:div=2,mlp=3", "star:k=3,mlp=2"})
    EXPECT_EQ(parseOpSpec(text).str(), text);
  auto message = [](const std::string& text) { return errorText([&] { parseOpSpec(text); }); };
  EXPECT_NE(message("ghost:s=1").find("option 's'"), std::string::npos);
  EXPECT_NE(message("ghost:d=4").find("option 'd' must be an odd"), std::string::npos);
  EXPECT_NE(message("star:k=6").find("option 'k' must be an odd"), std::string::npos);
  EXPECT_NE(message("pconv:k=3").find("has no option 'k'"), std::string::npos);
  EXPECT_NE(message("star:G=4").find("has no option 'G'"), std::string::npos);
}
