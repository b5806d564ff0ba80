// msconv::data::readIjb on three arbitrary metadata files, cut from the input at the first two
// "\n--\n" lines: meta/ijbc_face_tid_mid.txt, meta/ijbc_name_5pts_score.txt and
// meta/ijbc_template_pair_label.txt (the set's name is found from the first, as with an empty
// name). A set it returns is then used as the evaluation uses it: counts, image paths, and the
// first faces' landmarks aligned onto the ArcFace template. Every pair must name templates that
// have faces.
#include <opencv2/core.hpp>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>

#include "fuzz_util.h"
#include "msconv/data/ijb.h"
#include "msconv/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  msconv::fuzz::capAllocations(size);
  static const std::string root = [] {
    const std::string r = msconv::fuzz::scratchPath("ijb");
    std::filesystem::create_directories(r + "/meta");
    return r;
  }();
  const auto parts = msconv::fuzz::split(msconv::fuzz::bytesOf(data, size), "\n--\n", 3);
  msconv::fuzz::writeFile(root + "/meta/ijbc_face_tid_mid.txt", parts[0]);
  msconv::fuzz::writeFile(root + "/meta/ijbc_name_5pts_score.txt", parts[1]);
  msconv::fuzz::writeFile(root + "/meta/ijbc_template_pair_label.txt", parts[2]);
  try {
    const msconv::data::IjbSet set = msconv::data::readIjb(root);
    if (set.name != "ijbc") msconv::fuzz::violated("readIjb found the set '" + set.name + "'");
    std::set<int64_t> templates;
    for (const auto& f : set.faces) {
      templates.insert(f.template_id);
      (void)set.imagePath(f);
    }
    if (set.templates() != templates.size() || set.medias() > set.faces.size())
      msconv::fuzz::violated("readIjb: template or media counts are inconsistent");
    for (const auto& p : set.pairs)
      if (!templates.count(p.t1) || !templates.count(p.t2))
        msconv::fuzz::violated("readIjb returned a pair whose template has no face");
    const cv::Mat image(16, 16, CV_8UC3, cv::Scalar(40, 80, 120));
    for (size_t i = 0; i < set.faces.size() && i < 2; ++i) {
      try {
        const cv::Mat aligned = msconv::data::alignFace(image, set.faces[i].landmarks, 16);
        if (aligned.rows != 16 || aligned.cols != 16)
          msconv::fuzz::violated("alignFace returned the wrong size");
      } catch (const msconv::Error&) {
        // Landmarks that coincide: no transform, reported as documented.
      }
    }
  } catch (const msconv::Error&) {
    // Malformed metadata, reported as documented.
  }
  return 0;
}
