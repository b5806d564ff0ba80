#include <gtest/gtest.h>

#include "msconv/error.h"
#include "msconv/nn/spec.h"

using namespace msconv;
using namespace msconv::nn;

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
  auto message = [](const std::string& text) {
    try {
      parseOpSpec(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
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
