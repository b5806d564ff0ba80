// IJB-B / IJB-C 1:1 verification data as insightface distributes it: meta/<set>_face_tid_mid.txt
// (image, template, media), meta/<set>_template_pair_label.txt (template, template, label),
// meta/<set>_name_5pts_score.txt (image, 5 landmarks, detector score) and loose_crop/ images;
// faces are aligned by a 5-point similarity transform onto the 112 x 112 ArcFace template.
#pragma once

#include <array>
#include <cstdint>
#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

namespace msconv::data {

struct IjbFace {
  std::string image;  // file name under loose_crop/
  int64_t template_id = 0, media_id = 0;
  std::array<float, 10> landmarks{};  // x1 y1 ... x5 y5
  float score = 0.f;
};

struct IjbPair {
  int64_t t1 = 0, t2 = 0;
  int label = 0;
};

struct IjbSet {
  std::string root, name;
  std::vector<IjbFace> faces;
  std::vector<IjbPair> pairs;
  size_t templates() const;
  size_t medias() const;
  std::string imagePath(const IjbFace& f) const;
};

// Reads the three metadata files of `name` ("ijbc", "ijbb"; empty: the one found under meta/).
// Throws msconv::Error naming the file and line of anything malformed, faces without landmarks,
// and pair templates that no face belongs to.
IjbSet readIjb(const std::string& root, const std::string& name = {});

// The ArcFace 112 x 112 template's five points (eyes, nose tip, mouth corners).
const std::array<float, 10>& arcfaceTemplate();

// Least-squares similarity transform (rotation, uniform scale, translation; Umeyama without
// reflection) taking `src` points onto `dst` points: a 2 x 3 CV_64F matrix.
cv::Mat similarityTransform(const std::array<float, 10>& src, const std::array<float, 10>& dst);

// Warps `image` so that its landmarks land on the ArcFace template (size 112; other sizes scale
// the template).
cv::Mat alignFace(const cv::Mat& image, const std::array<float, 10>& landmarks, int size = 112);

// Face i of the set: loose_crop/<image> decoded, aligned by its landmarks, as 8-bit RGB
// size x size. Throws msconv::Error naming the file when it is missing or does not decode.
cv::Mat loadAlignedFace(const IjbSet& set, size_t i, int size = 112);

}  // namespace msconv::data
