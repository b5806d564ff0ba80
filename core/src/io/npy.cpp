#include "msconv/io/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "msconv/atomic_file.h"
#include "msconv/error.h"

namespace msconv::io {
// A named namespace: the unity build puts this file beside the other io sources.
namespace npy_detail {

constexpr char kMagic[] = "\x93NUMPY";  // 6 bytes

bool littleEndianHost() {
  const uint16_t one = 1;
  uint8_t first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

std::string shapeTuple(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += std::to_string(shape[i]) + ", ";
  if (shape.size() > 1) s.resize(s.size() - 2);
  if (shape.size() == 1) s.pop_back();  // "(5,)"
  return s + ")";
}

// The value of 'key' in the header's dict literal, as text up to its closing delimiter.
std::string field(const std::string& header, const std::string& key, const std::string& path) {
  const auto k = header.find("'" + key + "'");
  if (k == std::string::npos) throw Error(path + ": .npy header has no '" + key + "'");
  auto v = header.find(':', k);
  if (v == std::string::npos) throw Error(path + ": .npy header's '" + key + "' has no value");
  ++v;
  while (v < header.size() && header[v] == ' ') ++v;
  if (v >= header.size()) throw Error(path + ": .npy header's '" + key + "' has no value");
  size_t e = v;
  if (header[v] == '(') {
    e = header.find(')', v);
    if (e == std::string::npos) throw Error(path + ": .npy header's shape is not closed");
    return header.substr(v, e - v + 1);
  }
  if (header[v] == '\'') {
    e = header.find('\'', v + 1);
    if (e == std::string::npos) throw Error(path + ": .npy header's '" + key + "' is not closed");
    return header.substr(v + 1, e - v - 1);
  }
  while (e < header.size() && header[e] != ',' && header[e] != '}') ++e;
  return header.substr(v, e - v);
}

}  // namespace npy_detail

using namespace npy_detail;

void writeNpy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  if (!littleEndianHost()) throw Error(path + ": .npy writing needs a little-endian host");
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error(path + ": negative dimension in the array's shape");
    count *= d;
  }
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + shapeTuple(shape) + ", }";
  // Magic (6), version (2), header length (2), header ending in '\n', padded with spaces so that
  // the data starts on a multiple of 64 bytes (numpy's alignment).
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) throw Error(path + ": the array has too many dimensions for .npy 1.0");
  std::string bytes(kMagic, 6);
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>((header.size() >> 8) & 0xff);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(data), static_cast<size_t>(count) * sizeof(float));
  writeFileAtomically(path, bytes);
}

NpyArray readNpy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string b = ss.str();
  if (b.size() < 10 || b.compare(0, 6, kMagic, 6) != 0) throw Error(path + ": not a .npy file");
  const int major = static_cast<uint8_t>(b[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len =
        static_cast<uint8_t>(b[8]) | (static_cast<size_t>(static_cast<uint8_t>(b[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) throw Error(path + ": truncated .npy header");
    for (int i = 0; i < 4; ++i)
      header_len |= static_cast<size_t>(static_cast<uint8_t>(b[8 + i])) << (8 * i);
    offset = 12;
  } else {
    throw Error(path + ": unsupported .npy version " + std::to_string(major));
  }
  if (b.size() < offset + header_len) throw Error(path + ": truncated .npy header");
  const std::string header = b.substr(offset, header_len);
  const std::string descr = field(header, "descr", path);
  if (descr != "<f4" && !(descr == "=f4" && littleEndianHost()))
    throw Error(path + ": .npy dtype '" + descr + "' is not float32 (<f4)");
  const std::string fortran = field(header, "fortran_order", path);
  if (fortran.find("False") == std::string::npos)
    throw Error(path + ": .npy array is in Fortran order");
  const std::string shape = field(header, "shape", path);
  NpyArray a;
  int64_t count = 1;
  {
    std::string inner = shape.substr(1, shape.size() - 2);
    std::stringstream dims(inner);
    for (std::string d; std::getline(dims, d, ',');) {
      const auto first = d.find_first_not_of(' ');
      if (first == std::string::npos) continue;
      d = d.substr(first, d.find_last_not_of(' ') - first + 1);
      try {
        size_t used = 0;
        const long long v = std::stoll(d, &used);
        if (used != d.size() || v < 0) throw Error("");
        a.shape.push_back(v);
        count *= v;
      } catch (const std::exception&) {
        throw Error(path + ": .npy shape " + shape + " is not a tuple of sizes");
      }
    }
  }
  const size_t data_at = offset + header_len;
  const size_t want = static_cast<size_t>(count) * sizeof(float);
  if (b.size() - data_at != want)
    throw Error(path + ": .npy data is " + std::to_string(b.size() - data_at) + " bytes, shape " +
                shape + " needs " + std::to_string(want));
  a.data.resize(static_cast<size_t>(count));
  if (want) std::memcpy(a.data.data(), b.data() + data_at, want);
  return a;
}

}  // namespace msconv::io
