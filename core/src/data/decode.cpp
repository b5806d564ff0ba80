#include "msconv/data/decode.h"

#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "msconv/error.h"

namespace msconv::data {

namespace {

// OpenCV allocates whatever size an image header announces, up to 2^30 pixels (3 GiB as BGR;
// OPENCV_IO_MAX_IMAGE_PIXELS is read when the library loads, too early to set from here): a
// 20-byte PBM header can demand gigabytes. While decodeImage decodes, on its thread, OpenCV's
// default allocator refuses blocks above kMaxDecodedBytes (an 8192 x 8192 BGR photo fits; face
// crops are far smaller) with a cv::Exception, which decodeImage turns into msconv::Error.
constexpr size_t kMaxDecodedBytes = size_t{256} << 20;
thread_local bool t_decoding = false;

class DecodeLimitAllocator : public cv::MatAllocator {
 public:
  explicit DecodeLimitAllocator(cv::MatAllocator* base) : base_(base) {}
  cv::UMatData* allocate(int dims, const int* sizes, int type, void* data, size_t* step,
                         cv::AccessFlag flags, cv::UMatUsageFlags usage) const override {
    if (t_decoding && !data) {
      double bytes = CV_ELEM_SIZE(type);
      for (int i = 0; i < dims; ++i) bytes *= sizes[i];
      if (bytes > static_cast<double>(kMaxDecodedBytes))
        CV_Error(cv::Error::StsNoMem, "decoded image larger than the limit");
    }
    return base_->allocate(dims, sizes, type, data, step, flags, usage);
  }
  bool allocate(cv::UMatData* u, cv::AccessFlag access, cv::UMatUsageFlags usage) const override {
    return base_->allocate(u, access, usage);
  }
  void deallocate(cv::UMatData* u) const override { base_->deallocate(u); }

 private:
  cv::MatAllocator* base_;
};

// Installed when the program starts (before any thread), for every cv::Mat without an allocator
// of its own; outside decodeImage it only passes requests on.
[[maybe_unused]] const bool kLimitInstalled = [] {
  static DecodeLimitAllocator limited(cv::Mat::getDefaultAllocator());
  cv::Mat::setDefaultAllocator(&limited);
  return true;
}();

}  // namespace

cv::Mat decodeImage(const std::string& bytes, const std::string& where) {
  if (bytes.empty()) throw Error(where + ": empty image");
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat bgr;
  try {
    const struct Limit {
      Limit() { t_decoding = true; }
      ~Limit() { t_decoding = false; }
    } limit;
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
