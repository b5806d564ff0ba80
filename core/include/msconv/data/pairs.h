// insightface verification sets (lfw.bin, cfp_fp.bin, agedb_30.bin, ...): a pickle of
// (bins, issame) where bins holds 2N encoded images (pairs are consecutive) and issame N booleans.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace msconv::data {

struct PairSet {
  std::string path;
  std::vector<std::string> images;  // 2N encoded images
  std::vector<uint8_t> issame;      // N
  size_t pairs() const { return issame.size(); }
};

// Reads every variant seen in the wild: pickle protocols 2-5, memo references, Python-2 strings,
// bytes (also through _codecs.encode), images as numpy uint8 arrays, issame as a list of bools or
// a numpy bool array. Nothing is executed; foreign globals are rejected by name. Throws
// msconv::Error naming the file (and the image index or byte offset).
PairSet readPairsBin(const std::string& path);

// Writes a pickle (protocol 4) of (list of bytes, list of bools), through a temporary file.
void writePairsBin(const std::string& path, const PairSet& set);

}  // namespace msconv::data
