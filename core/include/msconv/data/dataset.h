// Training sets of labelled face images: insightface RecordIO and identity folders behind one
// interface that hands out encoded images, so decoding happens in the loader's worker threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace msconv::data {

class FaceDataset {
 public:
  virtual ~FaceDataset() = default;
  virtual std::string kind() const = 0;  // "recordio", "folder"
  virtual std::string path() const = 0;
  virtual size_t size() const = 0;
  virtual int numClasses() const = 0;
  virtual int label(size_t i) const = 0;
  // The encoded image of sample i. Throws msconv::Error naming the file / record.
  virtual std::string encoded(size_t i) const = 0;
  // Where sample i lives, for messages ("train.rec key 17", "ids/0003/img.jpg").
  virtual std::string describe(size_t i) const = 0;
};

// RecordIO: with a header record 0 (insightface: flag > 0, labels [first identity key, end)),
// images are keys 1 .. first-1 and identity records give each class's key range; without one,
// every indexed key is an image and its label comes from its own header.
std::unique_ptr<FaceDataset> openRecordDataset(const std::string& rec);

// One folder per identity (sorted names give labels 0..C-1), images inside in any format OpenCV
// decodes, found by extension (jpg, jpeg, png, bmp, pgm, ppm, pbm, tif, tiff, webp).
std::unique_ptr<FaceDataset> openFolderDataset(const std::string& root);

// A .rec file (or its prefix) or a folder.
std::unique_ptr<FaceDataset> openTrainingSet(const std::string& path);

bool isImageFile(const std::string& path);

}  // namespace msconv::data
