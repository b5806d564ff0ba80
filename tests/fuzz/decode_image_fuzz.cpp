// msconv::data::decodeFace on arbitrary bytes: the path every encoded face of a .bin, a .rec or an
// IJB loose_crop/ folder takes (OpenCV's imdecode, then resize and colour conversion). A face it
// returns is 112 x 112 8-bit RGB.
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>

#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "msconv/data/decode.h"
#include "msconv/error.h"

// OpenCV logs every codec's complaint about a malformed image to stderr: keep the output readable.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const cv::Mat face = msconv::data::decodeFace(bytes, "fuzz image");
    if (face.rows != 112 || face.cols != 112 || face.type() != CV_8UC3)
      msconv::fuzz::violated("decodeFace returned a " + std::to_string(face.rows) + " x " +
                             std::to_string(face.cols) + " image of type " +
                             std::to_string(face.type()));
  } catch (const msconv::Error&) {
    // Not an image, reported as documented.
  }
  return 0;
}
