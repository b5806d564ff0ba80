#include "msconv/eval/pair_scores.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "msconv/atomic_file.h"
#include "msconv/error.h"
#include "msconv/eval/evaluate.h"
#include "msconv/workspace/workspace.h"

namespace fs = std::filesystem;

namespace msconv::eval {
namespace {

constexpr char kMagic[8] = {'M', 'S', 'C', 'P', 'A', 'I', 'R', '1'};

// A 64-bit checksum of the arrays, 8 bytes at a time (multiply-rotate, as xxHash's rounds).
class ScoresChecksum {
 public:
  void add(const void* data, size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      round(w);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p + i, size - i);
    round(tail ^ (static_cast<uint64_t>(size) << 56));
  }
  uint64_t value() const { return h_; }

 private:
  void round(uint64_t w) {
    h_ += w * 0xC2B2AE3D27D4EB4Full;
    h_ = (h_ << 31) | (h_ >> 33);
    h_ *= 0x9E3779B185EBCA87ull;
  }
  uint64_t h_ = 0x27D4EB2F165667C5ull;
};

template <typename T>
void putArray(AtomicFile& f, ScoresChecksum& sum, const std::vector<T>& v) {
  sum.add(v.data(), v.size() * sizeof(T));
  f.write(v.data(), v.size() * sizeof(T));
}

std::string fileStatKey(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ":missing";
  return path + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

std::string absolutePath(const std::string& path) {
  std::error_code ec;
  const auto p = fs::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

// FNV-1a of a string, 8 hex digits (folder names of loose checkpoints).
std::string pathHash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  char b[17];
  std::snprintf(b, sizeof b, "%08x", static_cast<unsigned>(h ^ (h >> 32)));
  return b;
}

std::string formatNumber(const char* f, double v) {
  char b[40];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

PairScores pairScoresOf(const SetEvaluation& set, const std::string& checkpoint) {
  PairScores p;
  p.set = set.name;
  p.set_path = set.path;
  p.checkpoint = checkpoint;
  p.is_ijb = set.is_ijb;
  if (set.is_ijb) {
    p.score = set.ijb_scores;
    p.label = set.ijb_labels;
    p.t1 = set.ijb_t1;
    p.t2 = set.ijb_t2;
  } else {
    p.score = set.pairs.score;
    p.label = set.pairs.issame;
    p.dist = set.pairs.dist;
    p.fold = set.pairs.fold;
    p.fold_thresholds = set.pairs.fold_thresholds;
  }
  return p;
}

void writePairScores(const std::string& path, const PairScores& s, const std::string& key) {
  const size_t n = s.size();
  if (s.label.size() != n || (!s.is_ijb && (s.dist.size() != n || s.fold.size() != n)) ||
      (s.is_ijb && (s.t1.size() != n || s.t2.size() != n)))
    throw Error(path + ": per-pair arrays of different lengths");
  nlohmann::json h = {{"set", s.set},
                      {"set_path", s.set_path},
                      {"checkpoint", s.checkpoint},
                      {"is_ijb", s.is_ijb},
                      {"key", key},
                      {"pairs", n},
                      {"folds", s.fold_thresholds.size()}};
  const std::string header = h.dump();
  const uint64_t len = header.size();
  std::error_code ec;
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
  AtomicFile f(path);
  f.write(kMagic, 8);
  f.write(&len, 8);
  f.write(header.data(), header.size());
  ScoresChecksum sum;
  putArray(f, sum, s.score);
  putArray(f, sum, s.label);
  if (s.is_ijb) {
    putArray(f, sum, s.t1);
    putArray(f, sum, s.t2);
  } else {
    putArray(f, sum, s.dist);
    putArray(f, sum, s.fold);
    putArray(f, sum, s.fold_thresholds);
  }
  const uint64_t v = sum.value();
  f.write(&v, 8);
  f.commit();
}

std::optional<PairScores> readPairScores(const std::string& path, const std::string& key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the scores file");
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  char magic[8] = {};
  uint64_t len = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0)
    throw Error(path + ": not a per-pair scores file (no MSCPAIR1 magic)");
  if (!in.read(reinterpret_cast<char*>(&len), 8) || len > file_size - 16)
    throw Error(path + ": scores file cut short (in its header)");
  std::string header(len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(len));
  nlohmann::json h;
  PairScores s;
  uint64_t n = 0, folds = 0;
  try {
    h = nlohmann::json::parse(header);
    s.set = h.at("set").get<std::string>();
    s.set_path = h.at("set_path").get<std::string>();
    s.checkpoint = h.at("checkpoint").get<std::string>();
    s.is_ijb = h.at("is_ijb").get<bool>();
    n = h.at("pairs").get<uint64_t>();
    folds = h.at("folds").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": bad scores file header (" + e.what() + ")");
  }
  if (!key.empty() && h.value("key", std::string()) != key) return std::nullopt;
  const uint64_t per_pair = s.is_ijb ? 4 + 1 + 16 : 4 + 1 + 8 + 1;
  const uint64_t expected = 16 + len + n * per_pair + folds * 8 + 8;
  if (n > file_size || file_size != expected)
    throw Error(path + ": scores file of " + std::to_string(file_size) + " bytes, its header (" +
                std::to_string(n) + " pairs) says " + std::to_string(expected) +
                (file_size < expected ? " (cut short)" : ""));
  ScoresChecksum sum;
  auto get = [&](auto& v, uint64_t count) {
    v.resize(count);
    const size_t bytes = count * sizeof(v[0]);
    if (!in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(bytes)))
      throw Error(path + ": scores file cut short");
    sum.add(v.data(), bytes);
  };
  get(s.score, n);
  get(s.label, n);
  if (s.is_ijb) {
    get(s.t1, n);
    get(s.t2, n);
  } else {
    get(s.dist, n);
    get(s.fold, n);
    get(s.fold_thresholds, folds);
  }
  uint64_t stored = 0;
  if (!in.read(reinterpret_cast<char*>(&stored), 8))
    throw Error(path + ": scores file cut short (no checksum)");
  if (stored != sum.value()) throw Error(path + ": scores file corrupt (checksum mismatch)");
  for (uint64_t i = 0; i < n; ++i)
    if (s.label[i] > 1 || (!s.is_ijb && s.fold[i] >= folds))
      throw Error(path + ": pair " + std::to_string(i) + " has label or fold out of range");
  return s;
}

void writePairsCsv(const std::string& path, const PairScores& s) {
  std::string out = "pair,score,label";
  const bool folds = !s.is_ijb && s.dist.size() == s.size() && s.fold.size() == s.size();
  if (folds) out += ",dist,fold,fold_threshold";
  if (s.is_ijb) out += ",template1,template2";
  out += "\n";
  out.reserve(out.size() + s.size() * (folds ? 64 : 40));
  for (size_t i = 0; i < s.size(); ++i) {
    out += std::to_string(i);
    out += ',';
    out += formatNumber("%.9g", s.score[i]);
    out += s.label[i] ? ",1" : ",0";
    if (folds) {
      out += ',' + formatNumber("%.17g", s.dist[i]) + ',' + std::to_string(s.fold[i]) + ',' +
             formatNumber("%.17g", s.fold_thresholds.at(s.fold[i]));
    }
    if (s.is_ijb) out += ',' + std::to_string(s.t1[i]) + ',' + std::to_string(s.t2[i]);
    out += '\n';
  }
  writeFileAtomically(path, out);
}

PairScores readPairsCsv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the pairs file");
  std::string line;
  if (!std::getline(in, line)) throw Error(path + ": empty pairs file");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  PairScores s;
  s.set_path = path;
  const bool folds = line == "pair,score,label,dist,fold,fold_threshold";
  s.is_ijb = line == "pair,score,label,template1,template2";
  if (!folds && !s.is_ijb && line != "pair,score,label")
    throw Error(path + " line 1: not a pairs file header ('" + line + "')");
  const size_t columns = folds ? 6 : s.is_ijb ? 5 : 3;
  int64_t line_no = 1;
  std::vector<std::string> f;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    f.clear();
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) f.push_back(cell);
    const std::string where = path + " line " + std::to_string(line_no);
    if (f.size() != columns)
      throw Error(where + ": " + std::to_string(f.size()) + " fields, expected " +
                  std::to_string(columns));
    try {
      size_t used = 0;
      auto num = [&](const std::string& c) {
        const double v = std::stod(c, &used);
        if (used != c.size()) throw std::invalid_argument(c);
        return v;
      };
      auto integer = [&](const std::string& c) {
        const long long v = std::stoll(c, &used);
        if (used != c.size()) throw std::invalid_argument(c);
        return static_cast<int64_t>(v);
      };
      if (integer(f[0]) != static_cast<int64_t>(s.score.size()))
        throw Error(where + ": pair " + f[0] + ", expected " + std::to_string(s.score.size()));
      s.score.push_back(static_cast<float>(num(f[1])));
      const int64_t label = integer(f[2]);
      if (label != 0 && label != 1) throw Error(where + ": label " + f[2] + " is not 0 or 1");
      s.label.push_back(static_cast<uint8_t>(label));
      if (folds) {
        s.dist.push_back(num(f[3]));
        const int64_t fold = integer(f[4]);
        if (fold < 0 || fold > 254) throw Error(where + ": fold " + f[4] + " out of range");
        s.fold.push_back(static_cast<uint8_t>(fold));
        const double thr = num(f[5]);
        if (s.fold_thresholds.size() <= static_cast<size_t>(fold))
          s.fold_thresholds.resize(fold + 1, std::nan(""));
        double& t = s.fold_thresholds[fold];
        if (std::isnan(t))
          t = thr;
        else if (t != thr)
          throw Error(where + ": fold " + f[4] + " has two thresholds");
      }
      if (s.is_ijb) {
        s.t1.push_back(integer(f[3]));
        s.t2.push_back(integer(f[4]));
      }
    } catch (const std::logic_error&) {
      throw Error(where + ": not a number in '" + line + "'");
    }
  }
  for (size_t k = 0; k < s.fold_thresholds.size(); ++k)
    if (std::isnan(s.fold_thresholds[k]))
      throw Error(path + ": fold " + std::to_string(k) + " has no pairs");
  return s;
}

void checkSameSet(const PairScores& scores, const std::vector<uint8_t>& labels,
                  const std::string& file) {
  if (scores.size() != labels.size() || scores.label.size() != labels.size())
    throw Error(file + ": scores of " + std::to_string(scores.size()) + " pairs, the set has " +
                std::to_string(labels.size()) + " (a pairs file of another set?)");
  for (size_t i = 0; i < labels.size(); ++i)
    if ((scores.label[i] != 0) != (labels[i] != 0))
      throw Error(file + ": pair " + std::to_string(i) + " is labelled " +
                  (scores.label[i] ? "genuine" : "impostor") + ", the set's is " +
                  (labels[i] ? "genuine" : "impostor") + " (a pairs file of another set?)");
}

std::string pairScoresFile(const workspace::Workspace& ws, const std::string& checkpoint,
                           const std::string& set_name) {
  const fs::path ckpt = absolutePath(checkpoint);
  const fs::path runs = absolutePath((fs::path(ws.root()) / "runs").string());
  const std::string stem = ckpt.stem().string();
  if (ckpt.parent_path().parent_path() == runs) {
    const std::string run = ckpt.parent_path().filename().string();
    return (fs::path(ws.runDir(run)) / "scores" / (stem + "." + set_name + ".scores")).string();
  }
  return (fs::path(ws.root()) / "scores" / (stem + "-" + pathHash(ckpt.string())) /
          (set_name + ".scores"))
      .string();
}

std::string pairScoresKey(const std::string& checkpoint, const std::string& set_path,
                          const std::string& options) {
  std::string key = "checkpoint=" + fileStatKey(absolutePath(checkpoint)) + ";set=";
  const std::string set = absolutePath(set_path);
  std::error_code ec;
  if (fs::is_directory(set, ec)) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(fs::path(set) / "meta", ec))
      files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    key += set;
    for (const auto& f : files) key += "|" + fileStatKey(f);
  } else {
    key += fileStatKey(set);
  }
  if (!options.empty()) key += ";" + options;
  return key;
}

}  // namespace msconv::eval
