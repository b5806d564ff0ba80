#include "msconv/data/synth.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <thread>

#include "msconv/data/pairs.h"
#include "msconv/data/recordio.h"
#include "msconv/error.h"
#include "util/hash.h"

namespace fs = std::filesystem;

namespace msconv::data {
namespace {

constexpr auto mix = util::splitmix64;

class Rng {
 public:
  explicit Rng(uint64_t s) : state_(mix(s)) {}
  float uniform(float a, float b) {
    state_ = mix(state_);
    return a + (b - a) * static_cast<float>((state_ >> 40) * (1.0 / 16777216.0));
  }
  int below(int n) {
    return std::min(n - 1, static_cast<int>(uniform(0.f, static_cast<float>(n))));
  }
  uint64_t next() { return state_ = mix(state_); }

 private:
  uint64_t state_;
};

cv::Vec3f lerp(const cv::Vec3f& a, const cv::Vec3f& b, float t) {
  return a + (b - a) * t;
}

FaceTraits baseTraits(Rng& r) {
  FaceTraits t{};
  // Skin tones from light to dark (BGR), hair from blond to black and grey.
  const cv::Vec3f skins[] = {
      {190, 205, 240}, {150, 180, 225}, {110, 150, 200}, {75, 105, 160}, {50, 70, 110}};
  const float s = r.uniform(0.f, 4.f);
  const int si = std::min(3, static_cast<int>(s));
  t.skin = lerp(skins[si], skins[si + 1], s - si);
  const cv::Vec3f hairs[] = {
      {90, 170, 220}, {40, 80, 140}, {20, 35, 60}, {15, 15, 20}, {170, 170, 175}};
  t.hair = hairs[r.below(5)] * r.uniform(0.85f, 1.1f);
  const cv::Vec3f irises[] = {{40, 60, 90}, {30, 40, 50}, {140, 110, 60}, {80, 120, 70}};
  t.iris = irises[r.below(4)];
  t.lips = cv::Vec3f(t.skin[0] * 0.6f, t.skin[1] * 0.55f, std::min(255.f, t.skin[2] * 0.95f));
  t.background = cv::Vec3f(r.uniform(60, 230), r.uniform(60, 230), r.uniform(60, 230));
  t.face_w = r.uniform(30, 38);
  t.face_h = r.uniform(40, 48);
  t.jaw = r.uniform(0.75f, 1.0f);
  t.cheek = r.uniform(0.9f, 1.08f);
  t.eye_gap = r.uniform(31, 39);
  t.eye_w = r.uniform(8, 11.5f);
  t.eye_h = r.uniform(3.2f, 5.5f);
  t.eye_y = r.uniform(48, 54);
  t.eye_tilt = r.uniform(-8, 8);
  t.brow_h = r.uniform(7, 11);
  t.brow_thick = r.uniform(1.5f, 3.5f);
  t.brow_angle = r.uniform(-12, 12);
  t.brow_len = r.uniform(10, 15);
  t.nose_len = r.uniform(14, 22);
  t.nose_w = r.uniform(8, 14);
  t.mouth_w = r.uniform(18, 28);
  t.mouth_y = r.uniform(88, 95);
  t.lip_thick = r.uniform(1.5f, 4.f);
  t.hair_style = r.below(4);
  t.hair_line = r.uniform(20, 30);
  t.mark_x = r.uniform(-22, 22);
  t.mark_y = r.uniform(55, 95);
  t.mark_r = r.uniform(0.8f, 1.8f);
  t.ear = r.uniform(5, 9);
  return t;
}

// A look-alike: the same base, fine details moved.
void perturb(FaceTraits& t, Rng& r, float k) {
  t.eye_gap += r.uniform(-2.5f, 2.5f) * k;
  t.eye_w += r.uniform(-1.2f, 1.2f) * k;
  t.eye_h += r.uniform(-0.8f, 0.8f) * k;
  t.eye_tilt += r.uniform(-4, 4) * k;
  t.brow_angle += r.uniform(-6, 6) * k;
  t.brow_thick = std::max(1.f, t.brow_thick + r.uniform(-0.8f, 0.8f) * k);
  t.nose_len += r.uniform(-3, 3) * k;
  t.nose_w += r.uniform(-2, 2) * k;
  t.mouth_w += r.uniform(-3, 3) * k;
  t.lip_thick = std::max(1.f, t.lip_thick + r.uniform(-0.8f, 0.8f) * k);
  t.face_w += r.uniform(-1.5f, 1.5f) * k;
  t.jaw = std::clamp(t.jaw + r.uniform(-0.06f, 0.06f) * k, 0.7f, 1.05f);
  t.mark_x = r.uniform(-22, 22);
  t.mark_y = r.uniform(55, 95);
  t.skin *= 1.f + r.uniform(-0.05f, 0.05f) * k;
}

cv::Scalar bgr(const cv::Vec3f& c, float gain = 1.f) {
  return cv::Scalar(std::clamp(c[0] * gain, 0.f, 255.f), std::clamp(c[1] * gain, 0.f, 255.f),
                    std::clamp(c[2] * gain, 0.f, 255.f));
}

cv::Point P(float x, float y) {
  return cv::Point(cvRound(x * 16), cvRound(y * 16));
}
cv::Size S(float w, float h) {
  return cv::Size(cvRound(w * 16), cvRound(h * 16));
}
constexpr int kShift = 4;  // sub-pixel drawing: coordinates in 1/16 px

void ellipse(cv::Mat& img, float cx, float cy, float w, float h, float angle, float a0, float a1,
             const cv::Scalar& color, int thickness) {
  cv::ellipse(img, P(cx, cy), S(w, h), angle, a0, a1, color, thickness, cv::LINE_AA, kShift);
}

}  // namespace

FaceTraits identityTraits(uint64_t seed, int64_t identity) {
  Rng family(seed * 1000003ull + static_cast<uint64_t>(identity / 2) * 7919ull + 17);
  FaceTraits t = baseTraits(family);
  Rng own(seed * 1000003ull + static_cast<uint64_t>(identity) * 104729ull + 991);
  perturb(t, own, 1.f);
  return t;
}

FaceNuisance imageNuisance(uint64_t seed, int64_t identity, int64_t image) {
  Rng r(mix(seed ^ 0x5bd1e995ull) + static_cast<uint64_t>(identity) * 2654435761ull +
        static_cast<uint64_t>(image) * 40503ull);
  FaceNuisance n{};
  n.yaw = r.uniform(-0.35f, 0.35f);
  n.roll = r.uniform(-12, 12);
  n.scale = r.uniform(0.93f, 1.07f);
  n.dx = r.uniform(-3, 3);
  n.dy = r.uniform(-3, 3);
  n.light_angle = r.uniform(0, 6.2832f);
  n.light_strength = r.uniform(0.f, 0.45f);
  n.brightness = r.uniform(0.75f, 1.2f);
  n.smile = r.uniform(-0.6f, 1.f);
  n.eye_open = r.uniform(0.45f, 1.1f);
  n.blur = r.uniform(0.f, 1.f) < 0.4f ? r.uniform(0.3f, 1.3f) : 0.f;
  n.noise = r.uniform(0.f, 9.f);
  const float o = r.uniform(0.f, 1.f);
  n.occluder = o < 0.85f ? 0 : o < 0.9f ? 1 : o < 0.95f ? 2 : 3;
  n.noise_seed = r.next();
  return n;
}

cv::Mat renderFace(const FaceTraits& t, const FaceNuisance& n, int size) {
  const int S0 = 112;
  cv::Mat img(S0, S0, CV_8UC3, bgr(t.background));
  const float cx = 56, cy = 62;
  const float yawShift = n.yaw * 10.f;      // features slide toward the turned side
  const float nearW = 1.f + 0.35f * n.yaw;  // the near half widens, the far half narrows
  const float farW = 1.f - 0.35f * n.yaw;
  auto fx = [&](float dx) { return cx + yawShift + dx * (dx < 0 ? farW : nearW); };
  const cv::Scalar skin = bgr(t.skin), shade = bgr(t.skin, 0.82f), hair = bgr(t.hair);

  // Hair behind the head (long styles), neck, ears, face.
  if (t.hair_style == 1) {
    ellipse(img, cx + yawShift * 0.5f, cy + 8, t.face_w + 10, t.face_h + 14, 0, 180, 360, hair, -1);
    cv::rectangle(img, P(cx - t.face_w - 10, cy), P(cx + t.face_w + 10, cy + 48), hair, -1,
                  cv::LINE_AA, kShift);
  }
  cv::rectangle(img, P(cx - t.face_w * 0.45f, cy + 25), P(cx + t.face_w * 0.45f, 112), shade, -1,
                cv::LINE_AA, kShift);
  ellipse(img, fx(-t.face_w), t.eye_y + 6, t.ear * 0.6f, t.ear, 0, 0, 360, shade, -1);
  ellipse(img, fx(t.face_w), t.eye_y + 6, t.ear * 0.6f, t.ear, 0, 0, 360, shade, -1);
  ellipse(img, cx + yawShift * 0.6f, cy - 4, t.face_w * t.cheek, t.face_h * 0.78f, 0, 180, 360,
          skin, -1);
  // Lower face: cheeks narrowing to the jaw.
  std::vector<cv::Point> jaw;
  for (int i = 0; i <= 16; ++i) {
    const float a = static_cast<float>(M_PI) * i / 16.f;
    const float w = t.face_w * (t.jaw + (1 - t.jaw) * std::sin(a)) * t.cheek;
    jaw.push_back(P(fx(w * std::cos(a)), cy - 4 + t.face_h * 0.9f * std::sin(a)));
  }
  jaw.push_back(P(fx(-t.face_w * t.cheek), cy - 4));
  cv::fillPoly(img, std::vector<std::vector<cv::Point>>{jaw}, skin, cv::LINE_AA, kShift);

  // Hair on top.
  const float top = cy - t.face_h * 0.78f;
  if (t.hair_style != 2) {
    ellipse(img, cx + yawShift * 0.5f, top + t.hair_line * 0.55f, t.face_w * 1.08f, t.hair_line, 0,
            180, 360, hair, -1);
    if (t.hair_style == 3)  // fringe
      cv::rectangle(img, P(cx - t.face_w * 0.9f + yawShift, top + 4),
                    P(cx + t.face_w * 0.7f + yawShift, top + t.hair_line * 0.62f), hair, -1,
                    cv::LINE_AA, kShift);
  } else {
    ellipse(img, cx + yawShift * 0.5f, top + 6, t.face_w * 0.95f, 8, 0, 180, 360, hair, -1);
  }

  // Eyes: white, iris, pupil, lid line; openness follows the expression.
  for (int side : {-1, 1}) {
    const float ex = fx(side * t.eye_gap * 0.5f), ey = t.eye_y;
    const float w = t.eye_w * (side < 0 ? farW : nearW), h = t.eye_h * n.eye_open;
    const float tilt = side * t.eye_tilt;
    ellipse(img, ex, ey, w * 0.5f, std::max(0.8f, h), tilt, 0, 360, cv::Scalar(235, 240, 240), -1);
    if (h > 1.2f) {
      ellipse(img, ex + yawShift * 0.15f, ey, std::min(h, w * 0.3f), std::min(h, w * 0.3f), 0, 0,
              360, bgr(t.iris), -1);
      ellipse(img, ex + yawShift * 0.15f, ey, 1.1f, 1.1f, 0, 0, 360, cv::Scalar(10, 10, 10), -1);
    }
    ellipse(img, ex, ey, w * 0.5f, std::max(0.8f, h), tilt, 180, 360, cv::Scalar(40, 45, 60), 1);
    // Brow.
    const float by = ey - t.brow_h;
    const float bl = t.brow_len * (side < 0 ? farW : nearW);
    const float ang = (side * t.brow_angle) * static_cast<float>(M_PI) / 180.f;
    cv::line(img, P(ex - bl * 0.5f * std::cos(ang), by - side * bl * 0.5f * std::sin(ang) * -1),
             P(ex + bl * 0.5f * std::cos(ang), by + side * bl * 0.5f * std::sin(ang) * -1),
             bgr(t.hair, 0.8f), cvRound(t.brow_thick), cv::LINE_AA, kShift);
  }

  // Nose: bridge shadow and nostrils.
  const float nx = fx(0) + yawShift * 0.4f, ntop = t.eye_y + 4, nbot = t.eye_y + 4 + t.nose_len;
  cv::line(img, P(nx + 2, ntop), P(nx + 3 + n.yaw * 4, nbot - 2), shade, 2, cv::LINE_AA, kShift);
  ellipse(img, nx, nbot, t.nose_w * 0.5f, 2.6f, 0, 0, 180, shade, 2);
  ellipse(img, nx - t.nose_w * 0.25f, nbot + 0.5f, 1.4f, 1.f, 0, 0, 360, bgr(t.skin, 0.45f), -1);
  ellipse(img, nx + t.nose_w * 0.25f, nbot + 0.5f, 1.4f, 1.f, 0, 0, 360, bgr(t.skin, 0.45f), -1);

  // Mouth: curvature from the expression.
  const float mx = fx(0), my = t.mouth_y;
  const float mw = t.mouth_w * 0.5f, curve = 1.f + 5.f * std::abs(n.smile);
  // Smiling: the lower half of an ellipse centred above the mouth line (a U); frowning: the upper
  // half of one centred below it.
  const bool smiling = n.smile >= 0;
  ellipse(img, mx, my + (smiling ? -curve : curve) * 0.5f, mw, curve, 0, smiling ? 0 : 180,
          smiling ? 180 : 360, bgr(t.lips), cvRound(t.lip_thick));
  // The identity's small mark.
  ellipse(img, fx(t.mark_x), t.mark_y, t.mark_r, t.mark_r, 0, 0, 360, bgr(t.skin, 0.5f), -1);

  // Occluders.
  if (n.occluder == 1) {
    for (int side : {-1, 1})
      ellipse(img, fx(side * t.eye_gap * 0.5f), t.eye_y, t.eye_w * 0.8f, t.eye_h + 3, 0, 0, 360,
              cv::Scalar(25, 25, 25), -1);
    cv::line(img, P(fx(-t.eye_gap * 0.5f), t.eye_y), P(fx(t.eye_gap * 0.5f), t.eye_y),
             cv::Scalar(25, 25, 25), 2, cv::LINE_AA, kShift);
  } else if (n.occluder == 2) {
    ellipse(img, fx(0), t.mouth_y - 2, t.face_w * 0.8f, 16, 0, 0, 360, cv::Scalar(225, 220, 210),
            -1);
  } else if (n.occluder == 3) {
    const float ox = (n.noise_seed % 2 ? -1.f : 1.f) * t.face_w * 0.5f;
    ellipse(img, fx(ox), cy + 12, 12, 18, 20, 0, 360, bgr(t.skin, 1.05f), -1);
  }

  // Pose (roll, scale, shift) as one similarity warp, then lighting, blur and noise.
  cv::Mat M = cv::getRotationMatrix2D(cv::Point2f(56, 60), n.roll, n.scale);
  M.at<double>(0, 2) += n.dx;
  M.at<double>(1, 2) += n.dy;
  cv::Mat out;
  cv::warpAffine(img, out, M, cv::Size(S0, S0), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  cv::Mat f;
  out.convertTo(f, CV_32FC3);
  const float lx = std::cos(n.light_angle), ly = std::sin(n.light_angle);
  cv::Mat gain(S0, S0, CV_32FC1);
  for (int y = 0; y < S0; ++y) {
    float* g = gain.ptr<float>(y);
    for (int x = 0; x < S0; ++x)
      g[x] = n.brightness * (1.f + n.light_strength * ((x - 56) * lx + (y - 56) * ly) / 56.f);
  }
  cv::Mat gain3;
  cv::merge(std::vector<cv::Mat>{gain, gain, gain}, gain3);
  f = f.mul(gain3);
  if (n.blur > 0) cv::GaussianBlur(f, f, cv::Size(0, 0), n.blur);
  if (n.noise > 0) {
    cv::Mat noise(S0, S0, CV_32FC3);
    cv::RNG rng(n.noise_seed);
    rng.fill(noise, cv::RNG::NORMAL, 0.0, n.noise);
    f += noise;
  }
  f.convertTo(out, CV_8UC3);
  if (size != S0) cv::resize(out, out, cv::Size(size, size), 0, 0, cv::INTER_AREA);
  return out;
}

cv::Mat syntheticContactSheet(uint64_t seed, int rows, int cols, int size) {
  const int gap = 4;
  cv::Mat sheet(rows * (size + gap) + gap, cols * (size + gap) + gap, CV_8UC3,
                cv::Scalar(255, 255, 255));
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      renderFace(identityTraits(seed, r), imageNuisance(seed, r, c), size)
          .copyTo(sheet(cv::Rect(gap + c * (size + gap), gap + r * (size + gap), size, size)));
  return sheet;
}

SynthReport generateSyntheticFaces(const std::string& out_dir, const SynthOptions& o) {
  if (o.identities < 2 || o.images_per_id < 1 || o.pairs < 0)
    throw Error("synth: needs at least 2 identities and 1 image per identity");
  const int val_ids = o.val_identities > 0 ? o.val_identities : std::max(20, o.identities / 4);
  if (o.pairs > 0 && val_ids < 2)
    throw Error("synth: needs at least 2 held-out identities for pairs");
  if (o.format != "folder" && o.format != "recordio")
    throw Error("synthetic set: the format must be folder or recordio, got '" + o.format + "'");
  const auto start = std::chrono::steady_clock::now();
  fs::create_directories(out_dir);
  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  const std::vector<int> jpeg = {cv::IMWRITE_JPEG_QUALITY, o.jpeg_quality};
  auto encode = [&](const cv::Mat& img) {
    std::vector<uchar> buf;
    cv::imencode(".jpg", img, buf, jpeg);
    return std::string(buf.begin(), buf.end());
  };
  // Runs fn(i) for i in [0, n) on `threads` threads.
  auto parallel = [&](int64_t n, const std::function<void(int64_t)>& fn) {
    std::atomic<int64_t> next{0};
    std::vector<std::thread> pool;
    std::exception_ptr error;
    std::mutex m;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&] {
        try {
          for (int64_t i; (i = next++) < n;) fn(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(m);
          error = std::current_exception();
          next = n;
        }
      });
    for (auto& th : pool) th.join();
    if (error) std::rethrow_exception(error);
  };

  SynthReport rep;
  rep.identities = o.identities;
  const int per = o.images_per_id;
  const int chunk = 64;  // identities rendered in memory at a time
  std::unique_ptr<RecordWriter> writer;
  if (o.format == "recordio") {
    rep.train_path = (fs::path(out_dir) / "train.rec").string();
    writer = std::make_unique<RecordWriter>((fs::path(out_dir) / "train").string());
    // Header record 0: images are keys 1..N, identities N+1..N+C.
    const int64_t n = static_cast<int64_t>(o.identities) * per;
    IRHeader h0;
    h0.labels = {static_cast<float>(n + 1), static_cast<float>(n + 1 + o.identities)};
    writer->write(0, packRecord(h0, ""));
  } else {
    rep.train_path = (fs::path(out_dir) / "train").string();
  }
  std::vector<std::string> encoded(static_cast<size_t>(chunk) * per);
  const int64_t total_images =
      static_cast<int64_t>(o.identities) * per + 2 * static_cast<int64_t>(std::max(0, o.pairs));
  for (int first = 0; first < o.identities; first += chunk) {
    const int count = std::min(chunk, o.identities - first);
    parallel(static_cast<int64_t>(count) * per, [&](int64_t j) {
      const int id = first + static_cast<int>(j / per), k = static_cast<int>(j % per);
      encoded[j] = encode(renderFace(identityTraits(o.seed, id), imageNuisance(o.seed, id, k)));
    });
    for (int64_t j = 0; j < static_cast<int64_t>(count) * per; ++j) {
      const int id = first + static_cast<int>(j / per), k = static_cast<int>(j % per);
      if (writer) {
        IRHeader h;
        h.label = static_cast<float>(id);
        writer->write(1 + static_cast<uint64_t>(id) * per + k, packRecord(h, encoded[j]));
      } else {
        char name[64];
        std::snprintf(name, sizeof name, "%05d", id);
        const fs::path dir = fs::path(rep.train_path) / name;
        if (k == 0) fs::create_directories(dir);
        std::snprintf(name, sizeof name, "%03d.jpg", k);
        std::ofstream((dir / name).string(), std::ios::binary) << encoded[j];
      }
    }
    rep.train_images += static_cast<int64_t>(count) * per;
    if (o.progress && !o.progress(rep.train_images, total_images))
      throw Cancelled(out_dir + ": synthetic set generation cancelled");
  }
  if (writer) {
    const int64_t n = static_cast<int64_t>(o.identities) * per;
    for (int id = 0; id < o.identities; ++id) {
      IRHeader h;
      h.labels = {static_cast<float>(1 + static_cast<int64_t>(id) * per),
                  static_cast<float>(1 + static_cast<int64_t>(id + 1) * per)};
      writer->write(static_cast<uint64_t>(n + 1 + id), packRecord(h, ""));
    }
    writer->finish();
  }

  // Verification pairs from held-out identities o.identities .. o.identities + val_ids - 1:
  // half genuine; of the impostors, half are look-alikes (the sibling of the same family).
  if (o.pairs > 0) {
    PairSet set;
    set.images.resize(2 * static_cast<size_t>(o.pairs));
    set.issame.resize(o.pairs);
    parallel(o.pairs, [&](int64_t p) {
      Rng r(o.seed * 31 + static_cast<uint64_t>(p) * 7 + 5);
      const int a = o.identities + r.below(val_ids);
      const int kind = static_cast<int>(p % 4);  // 0, 1 genuine; 2 look-alike; 3 random
      int b = a;
      if (kind == 2) {
        // The sibling: identities 2k and 2k+1 share a family base.
        const int sibling = a ^ 1;
        if (sibling >= o.identities && sibling < o.identities + val_ids) b = sibling;
      }
      while (kind >= 2 && b == a) b = o.identities + r.below(val_ids);
      const int ia = 1000 + static_cast<int>(p) * 2, ib = ia + 1;  // images unseen in training
      set.images[2 * p] =
          encode(renderFace(identityTraits(o.seed, a), imageNuisance(o.seed, a, ia)));
      set.images[2 * p + 1] =
          encode(renderFace(identityTraits(o.seed, b), imageNuisance(o.seed, b, ib)));
      set.issame[p] = a == b;
    });
    rep.val_path = (fs::path(out_dir) / "val.bin").string();
    writePairsBin(rep.val_path, set);
    rep.val_pairs = o.pairs;
    if (o.progress) o.progress(total_images, total_images);
  }
  std::ofstream(fs::path(out_dir) / "synth.json")
      << "{\"generator\": \"msconv synthetic faces\", \"seed\": " << o.seed
      << ", \"identities\": " << o.identities << ", \"images_per_id\": " << per
      << ", \"val_identities\": " << val_ids << ", \"pairs\": " << o.pairs << ", \"format\": \""
      << o.format << "\"}\n";
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return rep;
}

}  // namespace msconv::data
