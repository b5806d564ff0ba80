#include "msconv/data/ijb.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "msconv/data/decode.h"
#include "msconv/error.h"

namespace fs = std::filesystem;

namespace msconv::data {
namespace {

template <typename Fn>
void eachLine(const std::string& path, Fn fn) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open IJB metadata file");
  std::string line;
  size_t no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::istringstream ss(line);
    std::vector<std::string> f;
    for (std::string w; ss >> w;) f.push_back(w);
    fn(f, path + ":" + std::to_string(no));
  }
}

int64_t toInt(const std::string& s, const std::string& where) {
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error(where + ": '" + s + "' is not an integer");
}

float toFloat(const std::string& s, const std::string& where) {
  try {
    size_t used = 0;
    const float v = std::stof(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error(where + ": '" + s + "' is not a number");
}

}  // namespace

size_t IjbSet::templates() const {
  std::set<int64_t> t;
  for (const auto& f : faces) t.insert(f.template_id);
  return t.size();
}

size_t IjbSet::medias() const {
  std::set<int64_t> m;
  for (const auto& f : faces) m.insert(f.media_id);
  return m.size();
}

std::string IjbSet::imagePath(const IjbFace& f) const {
  return (fs::path(root) / "loose_crop" / f.image).string();
}

IjbSet readIjb(const std::string& root, const std::string& name) {
  IjbSet set;
  set.root = root;
  set.name = name;
  const fs::path meta = fs::path(root) / "meta";
  if (!fs::is_directory(meta)) throw Error(root + ": no meta/ folder (not an IJB-B/C layout)");
  if (set.name.empty()) {
    for (const auto& e : fs::directory_iterator(meta)) {
      const std::string f = e.path().filename().string();
      const auto pos = f.find("_face_tid_mid.txt");
      if (pos != std::string::npos) set.name = f.substr(0, pos);
    }
    if (set.name.empty()) throw Error(meta.string() + ": no <set>_face_tid_mid.txt file");
  }
  std::map<std::string, size_t> by_image;
  eachLine((meta / (set.name + "_face_tid_mid.txt")).string(),
           [&](const auto& f, const std::string& w) {
             if (f.size() < 3) throw Error(w + ": expected 'image template media'");
             IjbFace face;
             face.image = f[0];
             face.template_id = toInt(f[1], w);
             face.media_id = toInt(f[2], w);
             by_image[face.image] = set.faces.size();
             set.faces.push_back(face);
           });
  std::vector<bool> has_landmarks(set.faces.size(), false);
  eachLine((meta / (set.name + "_name_5pts_score.txt")).string(),
           [&](const auto& f, const std::string& w) {
             if (f.size() < 12) throw Error(w + ": expected 'image x1 y1 ... x5 y5 score'");
             auto it = by_image.find(f[0]);
             if (it == by_image.end())
               throw Error(w + ": image '" + f[0] + "' is not in the face list");
             auto& face = set.faces[it->second];
             for (int i = 0; i < 10; ++i) face.landmarks[i] = toFloat(f[1 + i], w);
             face.score = toFloat(f[11], w);
             has_landmarks[it->second] = true;
           });
  for (size_t i = 0; i < set.faces.size(); ++i)
    if (!has_landmarks[i])
      throw Error((meta / (set.name + "_name_5pts_score.txt")).string() +
                  ": no landmarks for image '" + set.faces[i].image + "'");
  std::set<int64_t> known;
  for (const auto& f : set.faces) known.insert(f.template_id);
  eachLine((meta / (set.name + "_template_pair_label.txt")).string(),
           [&](const auto& f, const std::string& w) {
             if (f.size() < 3) throw Error(w + ": expected 'template template label'");
             IjbPair p{toInt(f[0], w), toInt(f[1], w), static_cast<int>(toInt(f[2], w))};
             for (int64_t t : {p.t1, p.t2})
               if (!known.count(t))
                 throw Error(w + ": template " + std::to_string(t) + " has no faces");
             set.pairs.push_back(p);
           });
  return set;
}

const std::array<float, 10>& arcfaceTemplate() {
  // insightface's eval_ijbc.py: the 96 x 112 template (30.2946, 51.6963), ... with 8 added to
  // every x (src[:, 0] += 8.0), which centres it in 112 x 112.
  static const std::array<float, 10> t = [] {
    std::array<float, 10> p = {30.2946f, 51.6963f, 65.5318f, 51.5014f, 48.0252f,
                               71.7366f, 33.5493f, 92.3655f, 62.7299f, 92.2041f};
    for (int i = 0; i < 5; ++i) p[2 * i] += 8.0f;
    return p;
  }();
  return t;
}

cv::Mat similarityTransform(const std::array<float, 10>& src, const std::array<float, 10>& dst) {
  double smx = 0, smy = 0, dmx = 0, dmy = 0;
  for (int i = 0; i < 5; ++i)
    smx += src[2 * i], smy += src[2 * i + 1], dmx += dst[2 * i], dmy += dst[2 * i + 1];
  smx /= 5, smy /= 5, dmx /= 5, dmy /= 5;
  double a = 0, b = 0, norm = 0;
  for (int i = 0; i < 5; ++i) {
    const double sx = src[2 * i] - smx, sy = src[2 * i + 1] - smy;
    const double dx = dst[2 * i] - dmx, dy = dst[2 * i + 1] - dmy;
    a += sx * dx + sy * dy;
    b += sx * dy - sy * dx;
    norm += sx * sx + sy * sy;
  }
  if (norm < 1e-12) throw Error("landmarks coincide: no similarity transform");
  const double c = a / norm, s = b / norm;  // scale * cos, scale * sin
  cv::Mat M =
      (cv::Mat_<double>(2, 3) << c, -s, dmx - (c * smx - s * smy), s, c, dmy - (s * smx + c * smy));
  return M;
}

cv::Mat alignFace(const cv::Mat& image, const std::array<float, 10>& landmarks, int size) {
  std::array<float, 10> dst = arcfaceTemplate();
  for (auto& v : dst) v *= size / 112.f;
  cv::Mat out;
  cv::warpAffine(image, out, similarityTransform(landmarks, dst), cv::Size(size, size),
                 cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  return out;
}

cv::Mat loadAlignedFace(const IjbSet& set, size_t i, int size) {
  if (i >= set.faces.size())
    throw Error(set.root + ": face " + std::to_string(i) + " out of range");
  const std::string path = set.imagePath(set.faces[i]);
  const cv::Mat bgr = decodeImage(readFile(path), path);
  cv::Mat rgb;
  cv::cvtColor(alignFace(bgr, set.faces[i].landmarks, size), rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

}  // namespace msconv::data
