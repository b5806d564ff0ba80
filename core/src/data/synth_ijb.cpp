#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "msconv/data/ijb.h"
#include "msconv/data/synth.h"
#include "msconv/error.h"
#include "util/hash.h"

namespace fs = std::filesystem;

namespace msconv::data {

SynthIjbReport generateSyntheticIjb(const std::string& root, const SynthIjbOptions& o) {
  if (o.identities < 2 || o.templates_per_id < 1 || o.medias_per_template < 1 ||
      o.images_per_media < 1 || o.impostors_per_template < 0)
    throw Error("synth ijb: needs 2 identities and at least one template, media and image each");
  fs::create_directories(fs::path(root) / "loose_crop");
  fs::create_directories(fs::path(root) / "meta");
  // Identities far above any training identity index, so none is seen in training.
  const int64_t first_identity = 1000000;
  struct Face {
    std::string image;
    int64_t identity, template_id, media_id, k;
  };
  std::vector<Face> faces;
  int64_t tid = 0, mid = 0;
  for (int id = 0; id < o.identities; ++id)
    for (int t = 0; t < o.templates_per_id; ++t) {
      ++tid;
      for (int m = 0; m < o.medias_per_template; ++m) {
        ++mid;
        for (int k = 0; k < o.images_per_media; ++k) {
          const int64_t n = static_cast<int64_t>(faces.size()) + 1;
          faces.push_back({std::to_string(n) + ".jpg", first_identity + id, tid, mid, n});
        }
      }
    }
  std::vector<std::array<float, 10>> landmarks(faces.size());
  std::vector<float> scores(faces.size());
  const int threads = o.threads > 0
                          ? o.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex mu;
  std::vector<std::thread> pool;
  for (int th = 0; th < threads; ++th)
    pool.emplace_back([&] {
      try {
        for (size_t i; (i = next++) < faces.size();) {
          const Face& f = faces[i];
          const cv::Mat face = renderFace(identityTraits(o.seed, f.identity),
                                          imageNuisance(o.seed, f.identity, f.k));
          // A similarity warp of the aligned face onto a 160 x 160 loose crop.
          uint64_t h = util::splitmix64(o.seed ^ util::splitmix64(static_cast<uint64_t>(f.k)));
          auto uniform = [&](double lo, double hi) {
            h = util::splitmix64(h);
            return lo + (hi - lo) * static_cast<double>(h >> 11) / 9007199254740992.0;
          };
          const double scale = uniform(1.0, 1.3), angle = uniform(-12, 12) * M_PI / 180;
          const double c = scale * std::cos(angle), s = scale * std::sin(angle);
          const double tx = 80 - (c * 56 - s * 56) + uniform(-6, 6),
                       ty = 80 - (s * 56 + c * 56) + uniform(-6, 6);
          const cv::Mat M = (cv::Mat_<double>(2, 3) << c, -s, tx, s, c, ty);
          cv::Mat crop;
          const cv::Vec3b corner = face.at<cv::Vec3b>(0, 0);
          cv::warpAffine(face, crop, M, cv::Size(160, 160), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                         cv::Scalar(corner[0], corner[1], corner[2]));
          const auto& tpl = arcfaceTemplate();
          for (int p = 0; p < 5; ++p) {
            landmarks[i][2 * p] = static_cast<float>(c * tpl[2 * p] - s * tpl[2 * p + 1] + tx);
            landmarks[i][2 * p + 1] = static_cast<float>(s * tpl[2 * p] + c * tpl[2 * p + 1] + ty);
          }
          scores[i] = static_cast<float>(uniform(0.6, 1.0));
          if (!cv::imwrite((fs::path(root) / "loose_crop" / f.image).string(), crop))
            throw Error(root + "/loose_crop/" + f.image + ": cannot write");
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        error = std::current_exception();
        next = faces.size();
      }
    });
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);

  const fs::path meta = fs::path(root) / "meta";
  std::ofstream tm(meta / (o.name + "_face_tid_mid.txt")),
      lm(meta / (o.name + "_name_5pts_score.txt")),
      pl(meta / (o.name + "_template_pair_label.txt"));
  for (size_t i = 0; i < faces.size(); ++i) {
    tm << faces[i].image << " " << faces[i].template_id << " " << faces[i].media_id << "\n";
    lm << faces[i].image;
    for (float v : landmarks[i]) lm << " " << v;
    lm << " " << scores[i] << "\n";
  }
  SynthIjbReport r;
  r.images = static_cast<int64_t>(faces.size());
  r.templates = tid;
  const int64_t per = o.templates_per_id;
  uint64_t h = util::splitmix64(o.seed + 77);
  for (int64_t t1 = 1; t1 <= tid; ++t1) {
    const int64_t id1 = (t1 - 1) / per;
    for (int64_t t2 = t1 + 1; t2 <= (id1 + 1) * per; ++t2) {
      pl << t1 << " " << t2 << " 1\n";
      ++r.pairs, ++r.genuine;
    }
    for (int k = 0; k < o.impostors_per_template; ++k) {
      int64_t t2;
      do {
        h = util::splitmix64(h);
        t2 = 1 + static_cast<int64_t>(h % static_cast<uint64_t>(tid));
      } while ((t2 - 1) / per == id1);
      pl << t1 << " " << t2 << " 0\n";
      ++r.pairs;
    }
  }
  if (!tm || !lm || !pl) throw Error(meta.string() + ": cannot write the IJB metadata");
  return r;
}

}  // namespace msconv::data
