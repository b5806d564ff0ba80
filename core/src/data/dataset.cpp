#include "msconv/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "msconv/data/decode.h"
#include "msconv/data/recordio.h"
#include "msconv/error.h"

namespace fs = std::filesystem;

namespace msconv::data {
namespace {

int toLabel(float v, const std::string& where) {
  if (!std::isfinite(v) || v < 0 || v != std::floor(v) || v > 1e9f)
    throw Error(where + ": label " + std::to_string(v) + " is not a class index");
  return static_cast<int>(v);
}

class RecordDataset : public FaceDataset {
 public:
  explicit RecordDataset(const std::string& rec) : reader_(rec) {
    const std::string& p = reader_.path();
    if (reader_.size() == 0) throw Error(p + ": the index lists no records");
    bool has_header = false;
    if (reader_.hasKey(0)) {
      const IRHeader h0 = reader_.readHeader(0);
      has_header = h0.flag > 0 && h0.labels.size() >= 2;
      if (has_header) {
        const int64_t first = toLabel(h0.labels[0], p + " key 0"),
                      end = toLabel(h0.labels[1], p + " key 0");
        if (first < 1 || end < first)
          throw Error(p + " key 0: header range [" + std::to_string(first) + ", " +
                      std::to_string(end) + ") is not an identity range");
        // Images are keys 1 .. first-1; identities first .. end-1 give each class's image range.
        for (uint64_t k = 1; k < static_cast<uint64_t>(first); ++k) {
          if (!reader_.hasKey(k))
            throw Error(p + ": image key " + std::to_string(k) + " is missing from the index");
          keys_.push_back(k);
        }
        labels_.assign(keys_.size(), -1);
        int cls = 0;
        for (uint64_t id = first; id < static_cast<uint64_t>(end); ++id, ++cls) {
          const IRHeader h = reader_.readHeader(id);
          const std::string w = p + " key " + std::to_string(id);
          if (h.labels.size() < 2) throw Error(w + ": identity record without its image range");
          const int a = toLabel(h.labels[0], w), b = toLabel(h.labels[1], w);
          if (a < 1 || b < a || b > first)
            throw Error(w + ": identity image range [" + std::to_string(a) + ", " +
                        std::to_string(b) + ") lies outside the images");
          for (int k = a; k < b; ++k) labels_[k - 1] = cls;
        }
        classes_ = cls;
        for (size_t i = 0; i < labels_.size(); ++i)
          if (labels_[i] < 0)
            throw Error(p + ": image key " + std::to_string(keys_[i]) + " belongs to no identity");
      }
    }
    if (!has_header) {
      keys_ = reader_.keys();
      std::sort(keys_.begin(), keys_.end());
      labels_.reserve(keys_.size());
      int max_label = -1;
      for (uint64_t k : keys_) {
        const IRHeader h = reader_.readHeader(k);
        const std::string w = p + " key " + std::to_string(k);
        const int l = toLabel(h.flag > 0 && !h.labels.empty() ? h.labels[0] : h.label, w);
        labels_.push_back(l);
        max_label = std::max(max_label, l);
      }
      classes_ = max_label + 1;
    }
  }
  std::string kind() const override { return "recordio"; }
  std::string path() const override { return reader_.path(); }
  size_t size() const override { return keys_.size(); }
  int numClasses() const override { return classes_; }
  int label(size_t i) const override { return labels_.at(i); }
  std::string encoded(size_t i) const override { return reader_.read(keys_.at(i)).image; }
  std::string describe(size_t i) const override {
    return reader_.path() + " key " + std::to_string(keys_.at(i));
  }

 private:
  RecordReader reader_;
  std::vector<uint64_t> keys_;
  std::vector<int> labels_;
  int classes_ = 0;
};

class FolderDataset : public FaceDataset {
 public:
  explicit FolderDataset(const std::string& root) : root_(root) {
    if (!fs::is_directory(root)) throw Error(root + ": no such folder");
    std::vector<fs::path> ids;
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory()) ids.push_back(e.path());
    std::sort(ids.begin(), ids.end());
    for (const auto& id : ids) {
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(id))
        if (e.is_regular_file() && isImageFile(e.path().string()))
          files.push_back(e.path().string());
      if (files.empty()) continue;
      std::sort(files.begin(), files.end());
      for (auto& f : files) {
        files_.push_back(std::move(f));
        labels_.push_back(classes_);
      }
      names_.push_back(id.filename().string());
      ++classes_;
    }
    if (files_.empty())
      throw Error(root + ": no identity folders with images (expected ROOT/<identity>/<image>)");
  }
  std::string kind() const override { return "folder"; }
  std::string path() const override { return root_; }
  size_t size() const override { return files_.size(); }
  int numClasses() const override { return classes_; }
  int label(size_t i) const override { return labels_.at(i); }
  std::string encoded(size_t i) const override { return readFile(files_.at(i)); }
  std::string describe(size_t i) const override { return files_.at(i); }

 private:
  std::string root_;
  std::vector<std::string> files_, names_;
  std::vector<int> labels_;
  int classes_ = 0;
};

}  // namespace

bool isImageFile(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  static const char* kExt[] = {".jpg", ".jpeg", ".png", ".bmp",  ".pgm", ".ppm",
                               ".pbm", ".pnm",  ".tif", ".tiff", ".webp"};
  return std::any_of(std::begin(kExt), std::end(kExt), [&](const char* e) { return ext == e; });
}

std::unique_ptr<FaceDataset> openRecordDataset(const std::string& rec) {
  return std::make_unique<RecordDataset>(rec);
}

std::unique_ptr<FaceDataset> openFolderDataset(const std::string& root) {
  return std::make_unique<FolderDataset>(root);
}

std::unique_ptr<FaceDataset> openTrainingSet(const std::string& path) {
  if (fs::is_directory(path)) {
    // A folder holding train.rec or a train/ identity folder (what msconv data synth writes).
    if (fs::exists(fs::path(path) / "train.rec"))
      return openRecordDataset((fs::path(path) / "train.rec").string());
    if (fs::is_directory(fs::path(path) / "train") && fs::exists(fs::path(path) / "synth.json"))
      return openFolderDataset((fs::path(path) / "train").string());
    return openFolderDataset(path);
  }
  if (fs::path(path).extension() == ".rec") return openRecordDataset(path);
  if (fs::path(path).extension() == ".idx")
    return openRecordDataset(fs::path(path).replace_extension(".rec").string());
  if (fs::exists(path + ".rec")) return openRecordDataset(path + ".rec");
  throw Error(path +
              ": not a training set (expected a .rec file, its prefix, or an identity folder)");
}

}  // namespace msconv::data
