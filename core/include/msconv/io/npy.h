// NumPy's .npy format (version 1.0): little-endian float32 arrays that numpy.load reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace msconv::io {

// Writes a C-order float32 array of `shape` through a temporary file. Throws msconv::Error
// naming the file.
void writeNpy(const std::string& path, const float* data, const std::vector<int64_t>& shape);

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};
// Reads a float32 (<f4), C-order .npy. Throws msconv::Error naming the file for anything else.
NpyArray readNpy(const std::string& path);

}  // namespace msconv::io
