#include "msconv/data/image.h"

#include <torch/torch.h>

#include <filesystem>

#include "msconv/data/decode.h"
#include "msconv/error.h"

namespace msconv::data {

at::Tensor loadFaceImage(const std::string& path, int size) {
  if (!std::filesystem::exists(path)) throw Error(path + ": no such image file");
  return faceTensor(decodeFace(readFile(path), path, size));
}

at::Tensor faceTensor(const cv::Mat& rgb) {
  torch::Tensor t = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8)
                        .permute({2, 0, 1})
                        .to(torch::kFloat32);
  return t.div_(127.5).sub_(1.0).contiguous();
}

}  // namespace msconv::data
