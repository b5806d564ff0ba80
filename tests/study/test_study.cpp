// Study files and their cells: parsing and its errors, the cross product, names, hashes, presets.
#include <gtest/gtest.h>

#include <string>

#include "msconv/error.h"
#include "msconv/study/study.h"

namespace msconv::study {
namespace {

std::string errorOf(const std::string& json) {
  try {
    expand(parseStudy(json, "s.json"));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const char* kGrid = R"({"name": "grid",
  "base": {"model.arch": "msnet-tiny", "train.max_steps": 10, "data.val": ["synthetic"]},
  "axes": {"model.op": ["msconv", "skconv"], "train.lr": [0.1, 0.05, 0.025]},
  "seeds": [4, 2],
  "reference": {"model.op": "skconv", "train.lr": 0.05}})";

TEST(Study, CrossProductInAxisOrderWithTheLastAxisFastest) {
  const auto s = parseStudy(kGrid, "grid.json");
  const auto cells = expand(s);
  ASSERT_EQ(cells.size(), 6u);
  EXPECT_EQ(cells[0].id, "model.op=msconv / train.lr=0.1");
  EXPECT_EQ(cells[1].id, "model.op=msconv / train.lr=0.05");
  EXPECT_EQ(cells[3].id, "model.op=skconv / train.lr=0.1");
  int refs = 0;
  for (const auto& c : cells) refs += c.reference;
  EXPECT_EQ(refs, 1);
  EXPECT_TRUE(cells[4].reference);
  EXPECT_EQ(cells[4].config.back(), "train.lr=0.05");
  EXPECT_EQ(cells[4].config[2], "data.val=synthetic");
  const auto settings = runSettings(cells[4], 2);
  EXPECT_EQ(settings.back(), "seed=2");
  EXPECT_EQ(runName(s, cells[4], 2), "grid-skconv-0.05-" + cells[4].hash + "-s2");
  // Distinct configurations, distinct hashes; the same configuration, the same hash.
  for (size_t i = 0; i < cells.size(); ++i)
    for (size_t j = i + 1; j < cells.size(); ++j) EXPECT_NE(cells[i].hash, cells[j].hash);
  EXPECT_EQ(expand(parseStudy(kGrid, "again"))[4].hash, cells[4].hash);
}

TEST(Study, AChangedBaseOrOverrideMakesNewCellsAndTheFileRoundTrips) {
  const auto s = parseStudy(kGrid, "grid.json");
  const auto cells = expand(s);
  const auto over = expand(s, {"train.max_steps=20"});
  EXPECT_NE(over[0].hash, cells[0].hash);
  EXPECT_EQ(over[0].config[1], "train.max_steps=20");
  EXPECT_THROW(expand(s, {"train.lr=0.3"}), Error);  // an axis cannot be overridden
  const auto back = parseStudy(studyJson(s), "written");
  EXPECT_EQ(back.base, s.base);
  EXPECT_EQ(back.axes, s.axes);
  EXPECT_EQ(back.seeds, s.seeds);
  EXPECT_EQ(back.reference, s.reference);
  EXPECT_EQ(expand(back)[5].hash, cells[5].hash);
}

TEST(Study, BadFilesAndValuesAreNamed) {
  EXPECT_NE(errorOf("[1]").find("s.json"), std::string::npos);
  EXPECT_NE(errorOf(R"({"name": "a", "seeds": [0], "colour": 1})").find("'colour'"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"name": "a b", "seeds": [0]})").find("'a b'"), std::string::npos);
  EXPECT_NE(errorOf(R"({"name": "a", "seeds": [0, 0]})").find("seed 0 is listed twice"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"name": "a", "seeds": []})").find("'seeds'"), std::string::npos);
  EXPECT_NE(errorOf(R"({"name": "a", "seeds": [0], "axes": {"train.lr": []}})").find("train.lr"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"name": "a", "seeds": [0], "axes": {"train.lr": [0.1]},
                        "reference": {"train.lr": 0.2}})")
                .find("reference train.lr = '0.2'"),
            std::string::npos);
  const std::string bad = errorOf(
      R"({"name": "a", "seeds": [0], "axes": {"model.op": ["msconv", "skconv"],
          "train.batch_size": [64, 1]}})");
  EXPECT_NE(bad.find("cell 'model.op=msconv / train.batch_size=1'"), std::string::npos) << bad;
  EXPECT_NE(bad.find("'train.batch_size' = 1"), std::string::npos) << bad;
  EXPECT_NE(
      errorOf(R"({"name": "a", "seeds": [0], "axes": {"model.op": ["nosuch"]}})").find("nosuch"),
      std::string::npos);
  EXPECT_NE(errorOf(R"({"name": "a", "seeds": [0], "base": {"data.train": "/no/such.rec"}})")
                .find("/no/such.rec"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"name": "a", "seeds": [0], "base": {"seed": 3}})").find("seed"),
            std::string::npos);
  // A grid too large to train is refused before it is enumerated.
  std::string big = R"({"name": "a", "seeds": [0, 1], "axes": {)";
  const char* keys[] = {"train.lr", "train.momentum", "train.weight_decay", "train.lr_min",
                        "train.clip_grad"};
  for (int k = 0; k < 5; ++k) {
    big += std::string(k ? ", " : "") + "\"" + keys[k] + "\": [";
    for (int v = 0; v < 10; ++v) big += std::string(v ? ", " : "") + std::to_string(v + 1) + ".5";
    big += "]";
  }
  big += "}}";
  EXPECT_NE(errorOf(big).find("more than 10000 runs"), std::string::npos) << errorOf(big);
}

TEST(Study, EveryPresetExpandsAndNamesItsReference) {
  for (const auto& name : presetNames()) {
    const auto s = preset(name, "tiny");
    const auto cells = expand(s);
    EXPECT_GE(cells.size(), 3u) << name;
    EXPECT_EQ(s.seeds.size(), 3u);
    EXPECT_EQ(parseStudy(studyJson(s), name).axes, s.axes) << name;
  }
  EXPECT_EQ(expand(preset("table5"))[1].reference, true);  // k3k5, the paper's choice
  EXPECT_THROW(preset("table9"), Error);
  EXPECT_THROW(preset("operators", "huge"), Error);
}

}  // namespace
}  // namespace msconv::study
