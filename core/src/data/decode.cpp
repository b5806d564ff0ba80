#include "msconv/data/decode.h"

#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "msconv/error.h"

namespace msconv::data {

cv::Mat decodeImage(const std::string& bytes, const std::string& where) {
  if (bytes.empty()) throw Error(where + ": empty image");
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
    bgr.release();
  }
  if (bgr.empty()) throw Error(where + ": cannot decode image (corrupt or unsupported format)");
  return bgr;
}

cv::Mat decodeFace(const std::string& bytes, const std::string& where, int size) {
  cv::Mat bgr = decodeImage(bytes, where);
  if (bgr.rows != size || bgr.cols != size) {
    const bool shrink = bgr.rows > size || bgr.cols > size;
    cv::resize(bgr, bgr, cv::Size(size, size), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace msconv::data
