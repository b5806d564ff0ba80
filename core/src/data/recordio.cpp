#include "msconv/data/recordio.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "msconv/atomic_file.h"
#include "msconv/error.h"

namespace msconv::data {
namespace {

constexpr uint32_t kLengthMask = (1u << 29) - 1;

void putU32(std::string& s, uint32_t v) {
  s.append(reinterpret_cast<const char*>(&v), 4);
}

template <typename T>
T getLE(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

std::string replaceExtension(const std::string& path, const std::string& ext) {
  return std::filesystem::path(path).replace_extension(ext).string();
}

}  // namespace

std::string packRecord(const IRHeader& h, const std::string& image) {
  std::string out;
  const uint32_t flag = static_cast<uint32_t>(h.labels.size());
  putU32(out, flag);
  out.append(reinterpret_cast<const char*>(&h.label), 4);
  out.append(reinterpret_cast<const char*>(&h.id), 8);
  out.append(reinterpret_cast<const char*>(&h.id2), 8);
  for (float l : h.labels) out.append(reinterpret_cast<const char*>(&l), 4);
  out += image;
  return out;
}

Record unpackRecord(const std::string& payload, const std::string& where) {
  if (payload.size() < 24)
    throw Error(where + ": record of " + std::to_string(payload.size()) +
                " bytes is shorter than its 24-byte header");
  Record r;
  r.header.flag = getLE<uint32_t>(payload.data());
  r.header.label = getLE<float>(payload.data() + 4);
  r.header.id = getLE<uint64_t>(payload.data() + 8);
  r.header.id2 = getLE<uint64_t>(payload.data() + 16);
  size_t pos = 24;
  if (r.header.flag > 0) {
    if (r.header.flag > (payload.size() - 24) / 4)
      throw Error(where + ": header announces " + std::to_string(r.header.flag) +
                  " labels, more than the record holds");
    r.header.labels.resize(r.header.flag);
    std::memcpy(r.header.labels.data(), payload.data() + 24, 4 * r.header.flag);
    pos += 4 * r.header.flag;
  }
  r.image = payload.substr(pos);
  return r;
}

RecordReader::RecordReader(const std::string& rec, std::string idx)
    : rec_(rec), idx_(idx.empty() ? replaceExtension(rec, ".idx") : std::move(idx)) {
  fd_ = ::open(rec_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(rec_ + ": cannot open RecordIO file: " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd_, &st);
  file_size_ = static_cast<uint64_t>(st.st_size);
  std::ifstream in(idx_);
  if (!in) {
    ::close(fd_);
    throw Error(idx_ + ": cannot open RecordIO index");
  }
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line == "\r") continue;
    uint64_t key = 0, offset = 0;
    char* end = nullptr;
    const char* s = line.c_str();
    errno = 0;
    key = std::strtoull(s, &end, 10);
    const bool key_ok = end != s && errno == 0 && (*end == '\t' || *end == ' ');
    const char* s2 = end;
    offset = key_ok ? std::strtoull(s2, &end, 10) : 0;
    if (!key_ok || end == s2 || errno != 0) {
      ::close(fd_);
      throw Error(idx_ + ":" + std::to_string(lineno) + ": malformed index line '" +
                  line.substr(0, 60) + "' (expected KEY<TAB>OFFSET)");
    }
    if (offset >= file_size_) {
      ::close(fd_);
      throw Error(idx_ + ":" + std::to_string(lineno) + ": key " + std::to_string(key) +
                  " points at byte " + std::to_string(offset) + ", past the end of " + rec_ + " (" +
                  std::to_string(file_size_) + " bytes)");
    }
    if (offsets_.emplace(key, offset).second) keys_.push_back(key);
  }
}

RecordReader::~RecordReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::string RecordReader::where(uint64_t key) const {
  return rec_ + " key " + std::to_string(key);
}

std::string RecordReader::readPayload(uint64_t key) const {
  auto it = offsets_.find(key);
  if (it == offsets_.end())
    throw Error(rec_ + ": key " + std::to_string(key) + " is not in " + idx_);
  uint64_t pos = it->second;
  std::string out;
  auto readAt = [&](char* dst, uint64_t n, uint64_t at) { this->readAt(key, dst, n, at); };
  for (int part = 0;; ++part) {
    char head[8];
    readAt(head, 8, pos);
    const uint32_t magic = getLE<uint32_t>(head), lrec = getLE<uint32_t>(head + 4);
    if (magic != kRecordMagic) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "0x%08x", magic);
      throw Error(where(key) + ": wrong magic " + buf + " at byte " + std::to_string(pos));
    }
    const uint32_t cflag = lrec >> 29, len = lrec & kLengthMask;
    if ((part == 0 && cflag != 0 && cflag != 1) || (part > 0 && cflag != 2 && cflag != 3))
      throw Error(where(key) + ": record part flag " + std::to_string(cflag) +
                  " out of sequence at byte " + std::to_string(pos));
    // Before allocating: a corrupt length (up to 512 MiB) must not cost memory.
    if (pos + 8 + len > file_size_)
      throw Error(where(key) + ": truncated record at byte " + std::to_string(pos + 8) +
                  " (needs " + std::to_string(len) + " bytes, file has " +
                  std::to_string(file_size_) + ")");
    if (part > 0) out.append(reinterpret_cast<const char*>(&kRecordMagic), 4);
    const size_t start = out.size();
    out.resize(start + len);
    readAt(out.data() + start, len, pos + 8);
    pos += 8 + ((len + 3u) & ~3u);
    if (cflag == 0 || cflag == 3) break;
  }
  return out;
}

void RecordReader::readAt(uint64_t key, char* dst, uint64_t n, uint64_t at) const {
  if (at + n > file_size_)
    throw Error(where(key) + ": truncated record at byte " + std::to_string(at) + " (needs " +
                std::to_string(n) + " bytes, file has " + std::to_string(file_size_) + ")");
  uint64_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, dst + done, n - done, static_cast<off_t>(at + done));
    if (r <= 0) throw Error(where(key) + ": read error at byte " + std::to_string(at + done));
    done += static_cast<uint64_t>(r);
  }
}

IRHeader RecordReader::readHeader(uint64_t key) const {
  auto it = offsets_.find(key);
  if (it == offsets_.end())
    throw Error(rec_ + ": key " + std::to_string(key) + " is not in " + idx_);
  char head[8 + 24];
  readAt(key, head, 8, it->second);
  const uint32_t lrec = getLE<uint32_t>(head + 4);
  const uint32_t len = lrec & kLengthMask;
  // Split, short, cut off or bad: the full path reports precisely. (A length past the end of the
  // file would otherwise size the label buffer below: up to 512 MiB from a few bytes.)
  if (getLE<uint32_t>(head) != kRecordMagic || (lrec >> 29) != 0 || len < 24 ||
      it->second + 8 + len > file_size_)
    return read(key).header;
  readAt(key, head + 8, 24, it->second + 8);
  const uint32_t flag = getLE<uint32_t>(head + 8);
  if (flag == 0) return unpackRecord(std::string(head + 8, 24), where(key)).header;
  if (flag > (len - 24) / 4) return read(key).header;
  std::string buf(24 + 4 * flag, '\0');
  readAt(key, buf.data(), buf.size(), it->second + 8);
  return unpackRecord(buf, where(key)).header;
}

RecordWriter::RecordWriter(const std::string& prefix) {
  const auto parent = std::filesystem::path(prefix).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  rec_ = std::make_unique<AtomicFile>(prefix + ".rec");
  idx_ = std::make_unique<AtomicFile>(prefix + ".idx");
}

RecordWriter::~RecordWriter() = default;  // unfinished files remove their temporaries

void RecordWriter::write(uint64_t key, const std::string& payload) {
  if (!rec_) throw Error("RecordIO: write after finish");
  const std::string line = std::to_string(key) + "\t" + std::to_string(offset_) + "\n";
  idx_->write(line.data(), line.size());
  const char* magic = reinterpret_cast<const char*>(&kRecordMagic);
  const uint32_t len = static_cast<uint32_t>(payload.size());
  if (payload.size() > kLengthMask) throw Error(rec_->path() + ": record too large");
  auto emit = [&](uint32_t cflag, const char* data, uint32_t n) {
    const uint32_t lrec = (cflag << 29) | n;
    rec_->write(magic, 4);
    rec_->write(&lrec, 4);
    if (n) rec_->write(data, n);
    offset_ += 8 + n;
  };
  // Split where the payload holds the magic at a 4-byte boundary, as dmlc-core does.
  uint32_t dptr = 0;
  const uint32_t lower = len & ~3u;
  for (uint32_t i = 0; i < lower; i += 4) {
    if (std::memcmp(payload.data() + i, magic, 4) == 0) {
      emit(dptr == 0 ? 1 : 2, payload.data() + dptr, i - dptr);
      dptr = i + 4;
    }
  }
  emit(dptr != 0 ? 3 : 0, payload.data() + dptr, len - dptr);
  const uint32_t pad = ((len + 3u) & ~3u) - len;
  const uint32_t zero = 0;
  if (pad) {
    rec_->write(&zero, pad);
    offset_ += pad;
  }
}

void RecordWriter::finish() {
  if (!rec_) return;
  // The records first: an index never points into a file that is not there. An index that then
  // fails takes the new records and the old index with it: no .rec stands beside another's index.
  rec_->commit();
  try {
    idx_->commit();
  } catch (const Error&) {
    std::error_code ec;
    std::filesystem::remove(rec_->path(), ec);
    std::filesystem::remove(idx_->path(), ec);
    throw;
  }
  rec_.reset();
  idx_.reset();
}

}  // namespace msconv::data
