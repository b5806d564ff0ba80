// Decoding encoded face images to the network's 112 x 112 RGB input.
#pragma once

#include <opencv2/core/mat.hpp>

#include <string>

namespace msconv::data {

// Decodes encoded bytes to an 8-bit BGR image as they are (any size). Throws msconv::Error naming
// `where` when they do not decode.
cv::Mat decodeImage(const std::string& bytes, const std::string& where);

// Decodes to an 8-bit RGB image of size x size: grayscale promoted to 3 channels, other sizes
// resized (area filter when shrinking, bilinear when enlarging, aspect ratio not kept: face crops
// are square). Throws msconv::Error naming `where` when the bytes do not decode.
cv::Mat decodeFace(const std::string& bytes, const std::string& where, int size = 112);

// Reads a whole file; throws msconv::Error naming it.
std::string readFile(const std::string& path);

}  // namespace msconv::data
