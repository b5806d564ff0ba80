#include "msconv/telemetry/telemetry.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "msconv/error.h"

namespace msconv::telemetry {
namespace {

constexpr char kMagic[9] = "MSCTLM01";
constexpr uint32_t kRecordMagic = 0x4d54454c;

std::string headerJson(const Header& h) {
  nlohmann::json j = {{"version", 1},       {"layers", h.layers}, {"gates", h.gates},
                      {"groups", h.groups}, {"bins", h.bins},     {"every", h.every}};
  return j.dump();
}

// An integer header field. get<int>() would convert any number: a float beyond int's range is
// undefined behaviour, a large integer wraps.
int headerInt(const nlohmann::json& j, const char* key, const std::string& path) {
  const auto& v = j.at(key);
  if (v.is_number_unsigned() && v.get<uint64_t>() <= uint64_t{INT_MAX})
    return static_cast<int>(v.get<uint64_t>());
  if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() >= INT_MIN &&
      v.get<int64_t>() <= INT_MAX)
    return static_cast<int>(v.get<int64_t>());
  throw Error(path + ": telemetry header: '" + key + "' is " + v.dump() + ", not an integer");
}

Header parseHeader(const std::string& text, const std::string& path) {
  try {
    const auto j = nlohmann::json::parse(text);
    if (headerInt(j, "version", path) != 1)
      throw Error(path + ": telemetry version " + j.at("version").dump() + " is not 1");
    Header h;
    h.layers = j.at("layers").get<std::vector<std::string>>();
    h.gates = j.at("gates").get<std::vector<std::string>>();
    h.groups = j.at("groups").get<std::vector<std::string>>();
    h.bins = headerInt(j, "bins", path);
    h.every = headerInt(j, "every", path);
    if (h.bins < 1 || h.bins > 1024) throw Error(path + ": telemetry header: bad bin count");
    return h;
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": telemetry header is not valid: " + e.what());
  }
}

size_t payloadSize(const Header& h) {
  return 8 + 8 + 4 + h.layers.size() * 16 + h.groups.size() * 4 + h.gates.size() * h.bins * 4;
}

template <typename T>
void put(std::vector<char>& b, T v) {
  const size_t at = b.size();
  b.resize(at + sizeof(T));
  std::memcpy(b.data() + at, &v, sizeof(T));
}

template <typename T>
T get(const char*& p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  p += sizeof(T);
  return v;
}

}  // namespace

uint32_t crc32(const void* data, size_t size) {
  static uint32_t table[256];
  static const bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  uint32_t c = 0xffffffffu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

Writer::Writer(const std::string& path, const Header& header) : path_(path), header_(header) {
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw Error(path + ": cannot create the telemetry file: " + std::strerror(errno));
  const std::string json = headerJson(header);
  const uint32_t n = static_cast<uint32_t>(json.size());
  if (std::fwrite(kMagic, 1, 8, f_) != 8 || std::fwrite(&n, 4, 1, f_) != 1 ||
      std::fwrite(json.data(), 1, n, f_) != n || std::fflush(f_) != 0)
    throw Error(path + ": cannot write the telemetry header: " + std::strerror(errno));
}

Writer Writer::append(const std::string& path, const Header& header) {
  const auto existing = read(path);  // throws on a missing file or a bad header
  if (headerJson(existing.header) != headerJson(header))
    throw Error(path + ": telemetry of a different network or setting; not appending");
  // Drop a torn record at the end (a killed writer) before appending.
  std::filesystem::resize_file(path, existing.bytes);
  Writer w;
  w.path_ = path;
  w.header_ = header;
  w.f_ = std::fopen(path.c_str(), "ab");
  if (!w.f_) throw Error(path + ": cannot append to the telemetry file: " + std::strerror(errno));
  return w;
}

Writer::Writer(Writer&& o) noexcept
    : path_(std::move(o.path_)), header_(std::move(o.header_)), f_(o.f_) {
  o.f_ = nullptr;
}

Writer::~Writer() {
  if (f_) std::fclose(f_);
}

void Writer::write(const Record& r) {
  if (r.layers.size() != header_.layers.size() || r.grad_norms.size() != header_.groups.size() ||
      r.gates.size() != header_.gates.size())
    throw Error(path_ + ": telemetry record does not match the header");
  std::vector<char> p;
  p.reserve(payloadSize(header_));
  put(p, r.step);
  put(p, r.wall);
  put(p, r.loss);
  for (const auto& l : r.layers) {
    put(p, l.mean);
    put(p, l.std);
    put(p, l.absmax);
    put(p, l.dead);
  }
  for (float g : r.grad_norms) put(p, g);
  for (const auto& h : r.gates) {
    if (static_cast<int>(h.size()) != header_.bins)
      throw Error(path_ + ": gate histogram with " + std::to_string(h.size()) + " bins");
    for (float v : h) put(p, v);
  }
  std::vector<char> rec;
  put(rec, kRecordMagic);
  put(rec, static_cast<uint32_t>(p.size()));
  rec.insert(rec.end(), p.begin(), p.end());
  put(rec, crc32(p.data(), p.size()));
  if (std::fwrite(rec.data(), 1, rec.size(), f_) != rec.size() || std::fflush(f_) != 0)
    throw Error(path_ + ": cannot append a telemetry record: " + std::strerror(errno));
}

size_t readMore(const std::string& path, ReadResult& r) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    r.problem = path + ": cannot open";
    return 0;
  }
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  if (size < r.bytes) {
    r.problem = path + ": the file shrank (" + std::to_string(size) + " bytes, " +
                std::to_string(r.bytes) + " read)";
    return 0;
  }
  in.seekg(static_cast<std::streamoff>(r.bytes));
  std::vector<char> buf(size - r.bytes);
  in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
  const Header& h = r.header;
  const size_t want = payloadSize(h);
  size_t added = 0, at = 0;
  r.problem.clear();
  while (at < buf.size()) {
    if (buf.size() - at < 8) {
      r.problem = "record at byte " + std::to_string(r.bytes) + " is incomplete (" +
                  std::to_string(buf.size() - at) + " bytes)";
      break;
    }
    const char* p = buf.data() + at;
    const uint32_t magic = get<uint32_t>(p), len = get<uint32_t>(p);
    if (magic != kRecordMagic || len != want) {
      r.problem = "record at byte " + std::to_string(r.bytes) + " is corrupt (bad magic or length)";
      break;
    }
    // In 64 bits: len is as large as the header makes it (up to 2^32 - 1), and 8 + len + 4 in
    // uint32 arithmetic wraps to a few bytes, which would pass for a complete record.
    const uint64_t whole = 8 + uint64_t{len} + 4;
    if (buf.size() - at < whole) {
      r.problem = "record at byte " + std::to_string(r.bytes) + " is incomplete (" +
                  std::to_string(buf.size() - at) + " of " + std::to_string(whole) + " bytes)";
      break;
    }
    const char* payload = p;
    p += len;
    if (get<uint32_t>(p) != crc32(payload, len)) {
      r.problem = "record at byte " + std::to_string(r.bytes) + " fails its checksum";
      break;
    }
    const char* q = payload;
    Record rec;
    rec.step = get<int64_t>(q);
    rec.wall = get<double>(q);
    rec.loss = get<float>(q);
    rec.layers.resize(h.layers.size());
    for (auto& l : rec.layers) {
      l.mean = get<float>(q);
      l.std = get<float>(q);
      l.absmax = get<float>(q);
      l.dead = get<float>(q);
    }
    rec.grad_norms.resize(h.groups.size());
    for (auto& g : rec.grad_norms) g = get<float>(q);
    rec.gates.assign(h.gates.size(), std::vector<float>(h.bins));
    for (auto& hist : rec.gates)
      for (auto& v : hist) v = get<float>(q);
    r.records.push_back(std::move(rec));
    at += whole;
    r.bytes += whole;
    ++added;
  }
  return added;
}

ReadResult read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": no telemetry file");
  char magic[8] = {};
  uint32_t n = 0;
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&n), 4);
  if (!in || std::memcmp(magic, kMagic, 8) != 0)
    throw Error(path + ": not an MSConv Lab telemetry file (or its header is not written yet)");
  if (n > (1u << 24)) throw Error(path + ": telemetry header length " + std::to_string(n));
  std::string json(n, '\0');
  in.read(json.data(), n);
  if (!in) throw Error(path + ": telemetry header is cut short");
  ReadResult r;
  r.header = parseHeader(json, path);
  r.bytes = 12 + n;
  readMore(path, r);
  return r;
}

}  // namespace msconv::telemetry
