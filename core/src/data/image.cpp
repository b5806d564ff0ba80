#include "msconv/data/image.h"

#include <torch/torch.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "msconv/error.h"

namespace msconv::data {

at::Tensor loadFaceImage(const std::string& path, int size) {
  if (!std::filesystem::exists(path)) throw Error(path + ": no such image file");
  cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  if (bgr.empty()) throw Error(path + ": cannot decode image (unsupported or corrupt file)");
  if (bgr.rows != size || bgr.cols != size) {
    const bool shrink = bgr.rows > size || bgr.cols > size;
    cv::resize(bgr, bgr, cv::Size(size, size), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  torch::Tensor t = torch::from_blob(rgb.data, {size, size, 3}, torch::kUInt8)
                        .permute({2, 0, 1})
                        .to(torch::kFloat32);
  return t.div_(127.5).sub_(1.0).contiguous();
}

}  // namespace msconv::data
