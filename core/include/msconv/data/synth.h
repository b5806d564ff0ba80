// The embedded default data: a deterministic, seeded generator of synthetic face identities.
// Identities differ in outline, eyes, brows, nose, mouth, skin, hair and small marks; identities
// come in look-alike pairs (2k, 2k+1 share a base and differ in fine detail), so telling them
// apart needs the "differential" features the paper is about. Each image adds pose, lighting,
// expression, blur, noise and sometimes an occluder. The same seed gives the same bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <opencv2/core/mat.hpp>
#include <string>

namespace msconv::data {

struct FaceTraits {
  cv::Vec3f skin, hair, iris, lips, background;
  float face_w, face_h, jaw, cheek;
  float eye_gap, eye_w, eye_h, eye_y, eye_tilt;
  float brow_h, brow_thick, brow_angle, brow_len;
  float nose_len, nose_w;
  float mouth_w, mouth_y, lip_thick;
  int hair_style;
  float hair_line;
  float mark_x, mark_y, mark_r;  // a mole or freckle: a fine, identity-specific detail
  float ear;
};

struct FaceNuisance {
  float yaw, roll, scale, dx, dy;
  float light_angle, light_strength, brightness;
  float smile, eye_open;
  float blur, noise;
  int occluder;  // 0 none, 1 sunglasses, 2 mask, 3 hand / patch
  uint64_t noise_seed;
};

FaceTraits identityTraits(uint64_t seed, int64_t identity);
FaceNuisance imageNuisance(uint64_t seed, int64_t identity, int64_t image);
// Renders one face into a size x size BGR image.
cv::Mat renderFace(const FaceTraits& traits, const FaceNuisance& nuisance, int size = 112);

struct SynthOptions {
  int identities = 200;  // training identities
  int images_per_id = 40;
  int pairs = 1000;        // verification pairs, from held-out identities
  int val_identities = 0;  // held-out identities (0: max(20, identities / 4))
  uint64_t seed = 1;
  std::string format = "folder";  // "folder" (OUT/train/<id>/<k>.jpg) or "recordio" (OUT/train.rec)
  int threads = 0;                // 0: every core
  int jpeg_quality = 92;
  // Called after each chunk of images written: (images done, images in the set, pairs' images
  // included). Returning false stops the generation: msconv::Cancelled is thrown and what was
  // written stays in out_dir (a caller generating into a temporary folder removes it).
  std::function<bool(int64_t done, int64_t total)> progress;
};

struct SynthReport {
  std::string train_path, val_path;
  int64_t train_images = 0;
  int identities = 0;
  int64_t val_pairs = 0;
  double seconds = 0.0;
};

// Writes the training set, OUT/val.bin and OUT/synth.json (the options, for provenance).
SynthReport generateSyntheticFaces(const std::string& out_dir, const SynthOptions& options);

// An IJB-B/C-format set of held-out synthetic identities (disjoint from every training set of the
// same seed): loose crops (the face under a random similarity warp on a larger canvas) with their
// true 5 landmarks and a detector score, templates of several medias of several images, and
// template pairs (all genuine pairs plus `impostors_per_template` random impostors each). The
// same seed gives the same bytes.
struct SynthIjbOptions {
  std::string name = "ijbc";
  int identities = 30, templates_per_id = 3, medias_per_template = 2, images_per_media = 2;
  int impostors_per_template = 12;
  uint64_t seed = 1;
  int threads = 0;
};

struct SynthIjbReport {
  int64_t images = 0, templates = 0, pairs = 0, genuine = 0;
};

SynthIjbReport generateSyntheticIjb(const std::string& root, const SynthIjbOptions& options);

// A contact sheet: rows identities 0..rows-1, columns their first images, with a small gap.
cv::Mat syntheticContactSheet(uint64_t seed, int rows, int cols, int size = 112);

}  // namespace msconv::data
