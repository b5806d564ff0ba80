#include <gtest/gtest.h>

#include <random>
#include <string>

#include "msconv/error.h"
#include "msconv/io/pickle.h"

using namespace msconv;
using namespace msconv::io;
using Kind = PickleValue::Kind;

namespace {

PicklePtr load(const std::string& bytes, std::set<std::string> globals = {}) {
  PickleOptions o;
  o.allowed_globals = std::move(globals);
  o.source = "test.pkl";
  return unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), o);
}

std::string err(const std::string& bytes, std::set<std::string> globals = {}) {
  try {
    load(bytes, std::move(globals));
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

// Bytes below were produced by CPython's pickle module (shown in the comments).
TEST(Pickle, Protocol2TupleWithMemoAndPython2Strings) {
  // Python 2: pickle.dumps((['ab', 'ab'], [True, False]), 2) with a shared 'ab' string.
  const std::string b(
      "\x80\x02]q\x00(U\x02"
      "abq\x01h\x01"
      "e]q\x02(\x88\x89"
      "e\x86q\x03.",
      26);
  auto v = load(b);
  ASSERT_EQ(v->kind, Kind::kTuple);
  ASSERT_EQ(v->items.size(), 2u);
  ASSERT_EQ(v->items[0]->items.size(), 2u);
  EXPECT_EQ(v->items[0]->items[1]->kind, Kind::kBytes);
  EXPECT_EQ(v->items[0]->items[1]->text, "ab");
  EXPECT_EQ(v->items[0]->items[0], v->items[0]->items[1]);  // memo: the same object
  EXPECT_TRUE(v->items[1]->items[0]->boolean);
  EXPECT_FALSE(v->items[1]->items[1]->boolean);
}

TEST(Pickle, Python3BytesAtProtocol2GoThroughCodecsEncode) {
  // pickle.dumps(b'\xff\x00A', 2)
  const std::string b(
      "\x80\x02"
      "c_codecs\nencode\nq\x00X\x04\x00\x00\x00\xc3\xbf\x00"
      "Aq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.",
      51);
  EXPECT_NE(err(b).find("global '_codecs.encode', which is not allowed"), std::string::npos);
  auto v = load(b, {"_codecs.encode"});
  ASSERT_EQ(v->kind, Kind::kBytes);
  EXPECT_EQ(v->text, std::string("\xff\x00"
                                 "A",
                                 3));
}

TEST(Pickle, Protocol4FramesDictsAndLongs) {
  // pickle.dumps({'a': 1, 'b': [2.5, -300, 2**40]}, 4)
  const std::string b(
      "\x80\x04\x95\x29\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01"
      "a\x94K\x01\x8c\x01"
      "b\x94]\x94(G@\x04\x00\x00\x00\x00\x00\x00J\xd4\xfe\xff\xff\x8a\x06\x00\x00\x00\x00\x00\x01"
      "eu.",
      52);
  auto v = load(b);
  ASSERT_EQ(v->kind, Kind::kDict);
  EXPECT_EQ(v->get("a")->integer, 1);
  const auto& list = v->get("b")->items;
  ASSERT_EQ(list.size(), 3u);
  EXPECT_DOUBLE_EQ(list[0]->real, 2.5);
  EXPECT_EQ(list[1]->integer, -300);
  EXPECT_EQ(list[2]->integer, int64_t(1) << 40);
}

TEST(Pickle, ForeignGlobalsAreRejectedWithTheirName) {
  // pickle of os.system('echo hi'): cposix\nsystem\n(S'echo hi'\ntR.
  const std::string b = "cposix\nsystem\n(S'echo hi'\ntR.";
  EXPECT_NE(err(b).find("global 'posix.system', which is not allowed"), std::string::npos);
}

TEST(Pickle, TruncatedAndMalformedInputNamesTheOffset) {
  EXPECT_NE(err(std::string("\x80\x02X\x10\x00\x00\x00"
                            "abc",
                            9))
                .find("truncated"),
            std::string::npos);
  EXPECT_NE(err(std::string("\x80\x02K\x01", 4)).find("ends before its STOP"), std::string::npos);
  EXPECT_NE(err(std::string("\x80\x02h\x05.", 5)).find("memo reference 5"), std::string::npos);
  EXPECT_NE(err(std::string("\x80\x02\xff", 3)).find("unsupported opcode 0xff"), std::string::npos);
  EXPECT_NE(err(std::string("\x80\x02"
                            "e.",
                            4))
                .find("pickle byte 2"),
            std::string::npos);
}

TEST(Pickle, RandomCorruptionNeverCrashes) {
  const std::string good(
      "\x80\x04\x95\x29\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01"
      "a\x94K\x01\x8c\x01"
      "b\x94]\x94(G@\x04\x00\x00\x00\x00\x00\x00J\xd4\xfe\xff\xff\x8a\x06\x00\x00\x00\x00\x00\x01"
      "eu.",
      52);
  std::mt19937 rng(42);
  int errors = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    std::string b = good;
    const int flips = 1 + rng() % 4;
    for (int i = 0; i < flips; ++i) b[rng() % b.size()] = static_cast<char>(rng() & 0xff);
    if (trial % 3 == 0) b.resize(rng() % b.size());
    try {
      load(b);
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 1000);
}
