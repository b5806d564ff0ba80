// Per-layer training telemetry: what msconv-scope draws while a network trains. The trainer
// appends one record every N steps to WORKSPACE/runs/NAME/telemetry.bin (rank 0 only):
//   file    = "MSCTLM01" | uint32 header length | header JSON | record*
//   header  = {"version": 1, "layers": [...], "gates": [...], "groups": [...], "bins": B,
//              "every": N}
//   record  = uint32 0x4d54454c | uint32 payload length | payload | uint32 CRC-32 of payload
//   payload = int64 step | float64 wall seconds | float32 loss |
//             per layer: activation mean, std, max |x|, dead-channel share (4 float32) |
//             per gradient group: gradient L2 norm (float32) |
//             per gate layer: B-bin histogram of the gate over [0, 1] (B float32 shares)
// Little-endian. Records are written whole and flushed; a reader stops at the first short or
// corrupt record and says where, so a file that is still growing (or was cut by a kill) reads
// as what it holds. Torch-free: the viewer links only this.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace msconv::telemetry {

struct Header {
  std::vector<std::string> layers;  // activation statistics (unit outputs)
  std::vector<std::string> gates;   // operator layers with a gate (MSConv c, SKConv a)
  std::vector<std::string> groups;  // gradient-norm groups (stem, stage units, embedding, head)
  int bins = 16;
  int every = 0;
};

struct LayerStats {
  float mean = 0, std = 0, absmax = 0, dead = 0;
};

struct Record {
  int64_t step = 0;
  double wall = 0;
  float loss = 0;
  std::vector<LayerStats> layers;         // header.layers order
  std::vector<float> grad_norms;          // header.groups order
  std::vector<std::vector<float>> gates;  // header.gates order, `bins` shares each
};

class Writer {
 public:
  // Creates (truncating) `path` with the header. Throws msconv::Error naming the file.
  Writer(const std::string& path, const Header& header);
  // Reopens an existing file for appending (a resumed run), after checking its header matches.
  static Writer append(const std::string& path, const Header& header);
  ~Writer();
  Writer(Writer&& other) noexcept;
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  void write(const Record& r);  // appends and flushes
  const std::string& path() const { return path_; }

 private:
  Writer() = default;
  std::string path_;
  Header header_;
  std::FILE* f_ = nullptr;
};

struct ReadResult {
  Header header;
  std::vector<Record> records;
  uint64_t bytes = 0;   // bytes consumed (header and whole records)
  std::string problem;  // empty, or why reading stopped before the end of the file
};

// Reads the whole file. A missing file or a bad header throws msconv::Error naming the file; a
// short or corrupt record ends the list and is described in `problem`.
ReadResult read(const std::string& path);

// Continues reading `r` from r.bytes (a growing file): appends new whole records; returns how many.
size_t readMore(const std::string& path, ReadResult& r);

uint32_t crc32(const void* data, size_t size);

}  // namespace msconv::telemetry
