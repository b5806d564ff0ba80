// Pictures from maps, with OpenCV only (no LibTorch, no Qt), so that the command line's PNGs, the
// workbench's panels and the golden-image tests draw exactly the same images.
//   colormaps:  jet (default for CAMs), turbo, viridis, inferno, gray;
//   overlay:    (1 - w) * colormap(cam) + w * image, w = 0.5 by default (pytorch-grad-cam);
//   grids:      labelled rows x columns of equally sized tiles, with a title.
#pragma once

#include <opencv2/core/mat.hpp>

#include <string>
#include <vector>

namespace msconv::viz {

enum class Colormap { kJet, kTurbo, kViridis, kInferno, kGray };

// "jet", "turbo", "viridis", "inferno", "gray"; throws msconv::Error otherwise.
Colormap colormapFromName(const std::string& name);
const char* colormapName(Colormap c);

// A single-channel float map with values in [0, 1] (clamped) -> 8-bit BGR.
cv::Mat applyColormap(const cv::Mat& map01, Colormap c);

// Min-max scales a float map to [0, 1] (a constant map becomes zeros).
cv::Mat scale01(const cv::Mat& map);

// The CAM overlay: image (8-bit BGR, any size) and cam (float in [0, 1], resized to the image
// bilinearly when sizes differ): (1 - w) * colormap(cam) + w * image, rounded.
cv::Mat overlay(const cv::Mat& image_bgr, const cv::Mat& cam01, Colormap c = Colormap::kJet,
                double image_weight = 0.5);

// A grid figure: cells[r][c] are 8-bit BGR tiles (resized to `tile` x `tile` with nearest
// neighbour for small maps, area filter for large ones); row labels on the left, column labels on
// top (wrapped at spaces onto more lines where a tile is too narrow), a title line. Empty cells
// stay background.
struct Grid {
  std::string title;
  std::vector<std::string> row_labels, col_labels;
  std::vector<std::vector<cv::Mat>> cells;
  int tile = 96;
};
// `cell_rects` (when given) receives where each cell's tile lies in the figure, cell_rects[r][c]
// for cells[r][c] (empty cells too), so that a viewer can map a pixel back to its tile.
cv::Mat renderGrid(const Grid& grid, std::vector<std::vector<cv::Rect>>* cell_rects = nullptr);

// A column label in lines that fit `width` pixels in OpenCV's `font` at `scale`: words wrapped
// at spaces (so "ch 192 c=0.53" over a narrow tile reads "ch 192" above "c=0.53", never a cut
// value); only a single word wider than the tile is cut, with '~'.
std::vector<std::string> wrapLabel(const std::string& label, int width, int font, double scale);

// Writes a PNG atomically (temporary file, then rename); throws msconv::Error naming the path.
void writePng(const std::string& path, const cv::Mat& image);

// Compares an image with a reference PNG: true when the sizes match and the mean absolute
// difference per channel is at most `mean_tol` levels and at most `max_share` of the pixels
// differ by more than 16 levels. On a mismatch, `candidate` (when not empty) receives the image.
bool matchesGolden(const cv::Mat& image, const std::string& reference, double mean_tol,
                   double max_share, const std::string& candidate, std::string* why);

}  // namespace msconv::viz
