#include <gtest/gtest.h>

#include <fstream>

#include "msconv/config/config.h"
#include "msconv/error.h"
#include "test_util.h"

using namespace msconv;
using namespace msconv::config;

namespace {
using test::errorOf;
}  // namespace

TEST(Config, DefaultsAreThePapersRecipe) {
  const Config c;
  EXPECT_EQ(c.text("model.arch"), "msnet50");
  EXPECT_DOUBLE_EQ(c.real("train.lr"), 0.02);
  EXPECT_DOUBLE_EQ(c.real("train.momentum"), 0.9);
  EXPECT_DOUBLE_EQ(c.real("train.weight_decay"), 5e-4);
  EXPECT_EQ(c.integer("train.batch_size"), 128);
  EXPECT_EQ(c.integer("train.epochs"), 20);
  EXPECT_EQ(c.text("train.schedule"), "cosine");
  EXPECT_DOUBLE_EQ(c.real("train.lr_min"), 5e-6);
  EXPECT_DOUBLE_EQ(c.real("train.clip_grad"), 5.0);
  EXPECT_EQ(c.text("loss.type"), "arcface");
}

TEST(Config, FileThenSetOverridesAndJsonRoundTrip) {
  const std::string path = ::testing::TempDir() + "/c.json";
  std::ofstream(path)
      << R"({"model": {"arch": "msnet-tiny", "op": "skconv"}, "train": {"lr": 0.1, "epochs": 3},
                            "data": {"val": ["a.bin", "b.bin"]}, "seed": 7})";
  const Config c =
      Config::load(path, {"train.lr=0.05", "data.flip=false", "data.val=x.bin,y.bin,z.bin"});
  EXPECT_EQ(c.text("model.arch"), "msnet-tiny");
  EXPECT_EQ(c.text("model.op"), "skconv");
  EXPECT_DOUBLE_EQ(c.real("train.lr"), 0.05);
  EXPECT_EQ(c.integer("train.epochs"), 3);
  EXPECT_FALSE(c.flag("data.flip"));
  EXPECT_EQ(c.list("data.val").size(), 3u);
  EXPECT_EQ(c.integer("seed"), 7);
  const Config back = Config::fromJson(c.toJson(), "round trip");
  EXPECT_EQ(back.toJson(), c.toJson());
}

TEST(Config, ErrorsNameTheKeyAndFile) {
  EXPECT_NE(errorOf([] { Config::load("", {"train.lrr=1"}); }).find("unknown key 'train.lrr'"),
            std::string::npos);
  EXPECT_NE(errorOf([] {
              Config::load("", {"train.lr=fast"});
            }).find("'train.lr' must be a number, got 'fast'"),
            std::string::npos);
  EXPECT_NE(errorOf([] {
              Config::load("", {"train.batch_size=0"});
            }).find("'train.batch_size' = 0 is outside"),
            std::string::npos);
  EXPECT_NE(errorOf([] {
              Config::load("", {"train.schedule=step"});
            }).find("is not one of cosine, poly, constant"),
            std::string::npos);
  EXPECT_NE(errorOf([] { Config::load("", {"noequals"}); }).find("key=value"), std::string::npos);
  const std::string path = ::testing::TempDir() + "/bad.json";
  std::ofstream(path) << R"({"train": {"epochs": "ten"}})";
  const std::string m = errorOf([&] { Config::load(path, {}); });
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("'train.epochs' must be an integer"), std::string::npos) << m;
  std::ofstream(path) << "{ not json";
  EXPECT_NE(errorOf([&] { Config::load(path, {}); }).find("not valid JSON"), std::string::npos);
  EXPECT_NE(errorOf([] { Config::load("/nonexistent.json", {}); }).find("/nonexistent.json"),
            std::string::npos);
}
