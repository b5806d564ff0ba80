// MXNet RecordIO as insightface uses it (train.rec + train.idx): random access by key, split
// records (cflag 1/2/3), the IRHeader with its optional label array, and a writer that produces
// files insightface's reader accepts. Thread-safe reads (positional I/O on one descriptor).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace msconv {
class AtomicFile;
}

namespace msconv::data {

inline constexpr uint32_t kRecordMagic = 0xced7230a;

// IRHeader: (uint32 flag, float32 label, uint64 id, uint64 id2), then `flag` float32 labels.
struct IRHeader {
  uint32_t flag = 0;
  float label = 0.f;
  uint64_t id = 0, id2 = 0;
  std::vector<float> labels;  // flag > 0: the label array
};

struct Record {
  IRHeader header;
  std::string image;  // the encoded image (JPEG, PNG, ...)
};

// Packs and unpacks the payload of one record. unpack throws msconv::Error naming `where`.
std::string packRecord(const IRHeader& header, const std::string& image);
Record unpackRecord(const std::string& payload, const std::string& where);

class RecordReader {
 public:
  // `rec` is the .rec file; `idx` defaults to the same name with .idx. Throws msconv::Error for a
  // missing file or a malformed index line (naming file and line).
  explicit RecordReader(const std::string& rec, std::string idx = {});
  ~RecordReader();
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  const std::string& path() const { return rec_; }
  size_t size() const { return offsets_.size(); }
  const std::vector<uint64_t>& keys() const { return keys_; }
  bool hasKey(uint64_t key) const { return offsets_.count(key) > 0; }
  // The payload of the record at `key`, parts joined with the magic between them. Throws
  // msconv::Error naming the file, key and byte offset for a wrong magic, a truncated record or a
  // key that is not in the index.
  std::string readPayload(uint64_t key) const;
  Record read(uint64_t key) const { return unpackRecord(readPayload(key), where(key)); }
  // The header alone (reads only the first bytes of the record).
  IRHeader readHeader(uint64_t key) const;

 private:
  std::string where(uint64_t key) const;
  void readAt(uint64_t key, char* dst, uint64_t n, uint64_t at) const;
  std::string rec_, idx_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::map<uint64_t, uint64_t> offsets_;
  std::vector<uint64_t> keys_;
};

// Writes .rec and .idx; records are split around the magic as dmlc-core's writer does. Files are
// written under temporary names and renamed into place by finish().
// Writes PREFIX.rec and PREFIX.idx through AtomicFile: they appear, whole, at finish(); a writer
// destroyed before it (or a failed write: a full disk) leaves neither, nor a temporary file.
// Errors throw msconv::Error naming the file and the cause.
class RecordWriter {
 public:
  explicit RecordWriter(const std::string& prefix);
  ~RecordWriter();
  void write(uint64_t key, const std::string& payload);
  void finish();

 private:
  std::unique_ptr<AtomicFile> rec_, idx_;
  uint64_t offset_ = 0;
};

}  // namespace msconv::data
