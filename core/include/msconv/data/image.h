// Decoding face images into network input.
#pragma once

#include <ATen/core/Tensor.h>

#include <opencv2/core/mat.hpp>

#include <string>

namespace msconv::data {

// Decodes any image OpenCV reads (JPEG, PNG, BMP, PGM/PPM, ...) into a 3 x size x size float
// tensor in RGB order with pixels scaled to [-1, 1] as (x / 255 - 0.5) / 0.5. Grayscale is
// promoted to 3 channels; other sizes are resized to size x size (area filter when shrinking,
// bilinear when enlarging; the aspect ratio is not kept, as insightface's crops are square).
// Throws msconv::Error naming the file when it is missing or cannot be decoded.
at::Tensor loadFaceImage(const std::string& path, int size = 112);

// An 8-bit RGB image (H x W x 3, as decodeFace returns) as a 3 x H x W float tensor in [-1, 1].
at::Tensor faceTensor(const cv::Mat& rgb);

}  // namespace msconv::data
