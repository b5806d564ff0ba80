#include "msconv/viz/figure.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "msconv/error.h"

namespace msconv::viz {

Colormap colormapFromName(const std::string& name) {
  if (name == "jet") return Colormap::kJet;
  if (name == "turbo") return Colormap::kTurbo;
  if (name == "viridis") return Colormap::kViridis;
  if (name == "inferno") return Colormap::kInferno;
  if (name == "gray" || name == "grey") return Colormap::kGray;
  throw Error("unknown colormap '" + name + "' (jet, turbo, viridis, inferno, gray)");
}

const char* colormapName(Colormap c) {
  switch (c) {
    case Colormap::kJet:
      return "jet";
    case Colormap::kTurbo:
      return "turbo";
    case Colormap::kViridis:
      return "viridis";
    case Colormap::kInferno:
      return "inferno";
    case Colormap::kGray:
      return "gray";
  }
  return "?";
}

cv::Mat applyColormap(const cv::Mat& map01, Colormap c) {
  CV_Assert(map01.channels() == 1);
  cv::Mat f, u8, out;
  map01.convertTo(f, CV_32F);
  cv::min(cv::max(f, 0.0), 1.0, f);
  f.convertTo(u8, CV_8U, 255.0);
  if (c == Colormap::kGray) {
    cv::cvtColor(u8, out, cv::COLOR_GRAY2BGR);
    return out;
  }
  const int cm = c == Colormap::kJet       ? cv::COLORMAP_JET
                 : c == Colormap::kTurbo   ? cv::COLORMAP_TURBO
                 : c == Colormap::kViridis ? cv::COLORMAP_VIRIDIS
                                           : cv::COLORMAP_INFERNO;
  cv::applyColorMap(u8, out, cm);
  return out;
}

cv::Mat scale01(const cv::Mat& map) {
  cv::Mat f;
  map.convertTo(f, CV_32F);
  double lo = 0, hi = 0;
  cv::minMaxLoc(f, &lo, &hi);
  if (!(hi > lo)) return cv::Mat::zeros(f.size(), CV_32F);
  return (f - lo) / (hi - lo);
}

cv::Mat overlay(const cv::Mat& image_bgr, const cv::Mat& cam01, Colormap c, double w) {
  CV_Assert(image_bgr.type() == CV_8UC3);
  cv::Mat cam = cam01;
  if (cam.size() != image_bgr.size())
    cv::resize(cam01, cam, image_bgr.size(), 0, 0, cv::INTER_LINEAR);
  const cv::Mat heat = applyColormap(cam, c);
  cv::Mat out;
  cv::addWeighted(heat, 1.0 - w, image_bgr, w, 0.0, out);  // rounds to nearest, saturates
  return out;
}

std::vector<std::string> wrapLabel(const std::string& label, int width, int font, double scale) {
  auto fits = [&](const std::string& t) {
    int base = 0;
    return cv::getTextSize(t, font, scale, 1, &base).width <= width;
  };
  std::vector<std::string> words, lines;
  std::string word;
  for (char ch : label + " ") {
    if (ch != ' ') {
      word += ch;
    } else if (!word.empty()) {
      words.push_back(word);
      word.clear();
    }
  }
  for (const auto& w : words) {
    if (!lines.empty() && fits(lines.back() + " " + w)) {
      lines.back() += " " + w;
      continue;
    }
    std::string t = w;
    while (t.size() > 3 && !fits(t)) t = t.substr(0, t.size() - 2) + "~";
    lines.push_back(t);
  }
  return lines;
}

cv::Mat renderGrid(const Grid& g, std::vector<std::vector<cv::Rect>>* cell_rects) {
  const int rows = static_cast<int>(g.cells.size());
  int cols = 0;
  for (const auto& r : g.cells) cols = std::max(cols, static_cast<int>(r.size()));
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  const double scale = 0.4;
  std::vector<std::vector<std::string>> headers;
  size_t header_lines = 0;
  for (int c = 0; c < cols && c < static_cast<int>(g.col_labels.size()); ++c) {
    headers.push_back(wrapLabel(g.col_labels[c], g.tile, font, scale));
    header_lines = std::max(header_lines, headers.back().size());
  }
  const int gap = 4, pad = 8;
  int label_w = 0;
  for (const auto& l : g.row_labels) {
    int base = 0;
    label_w = std::max(label_w, cv::getTextSize(l, font, scale, 1, &base).width);
  }
  label_w += g.row_labels.empty() ? 0 : 10;
  const int line_h = 14;
  const int title_h = g.title.empty() ? 0 : 22,
            header_h =
                g.col_labels.empty() ? 0 : 16 + line_h * (std::max<int>(1, header_lines) - 1);
  int title_w = 0;
  if (!g.title.empty()) {
    int base = 0;
    title_w = cv::getTextSize(g.title, font, 0.5, 1, &base).width;
  }
  const int width =
      std::max(pad * 2 + label_w + cols * g.tile + std::max(0, cols - 1) * gap, pad * 2 + title_w);
  const int height = pad * 2 + title_h + header_h + rows * g.tile + std::max(0, rows - 1) * gap;
  cv::Mat out(height, std::max(width, 1), CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Scalar ink(30, 30, 30);
  if (!g.title.empty()) cv::putText(out, g.title, {pad, pad + 14}, font, 0.5, ink, 1, cv::LINE_AA);
  const int top = pad + title_h + header_h, left = pad + label_w;
  if (cell_rects) {
    cell_rects->assign(static_cast<size_t>(rows), {});
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < static_cast<int>(g.cells[static_cast<size_t>(r)].size()); ++c)
        (*cell_rects)[static_cast<size_t>(r)].emplace_back(
            left + c * (g.tile + gap), top + r * (g.tile + gap), g.tile, g.tile);
  }
  for (size_t c = 0; c < headers.size(); ++c) {
    const auto& lines = headers[c];
    for (size_t k = 0; k < lines.size(); ++k) {  // the last line sits where one line would
      int base = 0;
      const int tw = cv::getTextSize(lines[k], font, scale, 1, &base).width;
      const int y = top - 5 - line_h * static_cast<int>(lines.size() - 1 - k);
      cv::putText(out, lines[k],
                  {left + static_cast<int>(c) * (g.tile + gap) + (g.tile - tw) / 2, y}, font, scale,
                  ink, 1, cv::LINE_AA);
    }
  }
  for (int r = 0; r < rows; ++r) {
    const int y = top + r * (g.tile + gap);
    if (r < static_cast<int>(g.row_labels.size()))
      cv::putText(out, g.row_labels[r], {pad, y + g.tile / 2 + 4}, font, scale, ink, 1,
                  cv::LINE_AA);
    for (int c = 0; c < static_cast<int>(g.cells[r].size()); ++c) {
      const cv::Mat& cell = g.cells[r][c];
      if (cell.empty()) continue;
      CV_Assert(cell.type() == CV_8UC3);
      cv::Mat tile;
      const int interp = cell.cols < g.tile ? cv::INTER_NEAREST : cv::INTER_AREA;
      cv::resize(cell, tile, {g.tile, g.tile}, 0, 0, interp);
      tile.copyTo(out(cv::Rect(left + c * (g.tile + gap), y, g.tile, g.tile)));
    }
  }
  return out;
}

void writePng(const std::string& path, const cv::Mat& image) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  const std::string tmp = path + ".tmp.png";
  bool written = false;
  try {
    written = cv::imwrite(tmp, image);
  } catch (const cv::Exception&) {
  }
  std::error_code ec;
  if (!written) {
    fs::remove(tmp, ec);
    throw Error(path + ": cannot write the PNG");
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code rm;
    fs::remove(tmp, rm);
    throw Error(path + ": cannot write the PNG: " + ec.message());
  }
}

bool matchesGolden(const cv::Mat& image, const std::string& reference, double mean_tol,
                   double max_share, const std::string& candidate, std::string* why) {
  const cv::Mat ref = cv::imread(reference, cv::IMREAD_COLOR);
  std::string reason;
  if (ref.empty()) {
    reason = reference + ": missing or unreadable";
  } else if (ref.size() != image.size()) {
    reason = reference + ": size " + std::to_string(ref.cols) + "x" + std::to_string(ref.rows) +
             ", image " + std::to_string(image.cols) + "x" + std::to_string(image.rows);
  } else {
    cv::Mat diff;
    cv::absdiff(ref, image, diff);
    const cv::Scalar mean = cv::mean(diff);
    const double m = (mean[0] + mean[1] + mean[2]) / 3;
    cv::Mat gray;
    cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
    const double share = cv::countNonZero(gray > 16) / static_cast<double>(gray.total());
    if (m > mean_tol || share > max_share)
      reason = reference + ": mean difference " + std::to_string(m) + " levels, " +
               std::to_string(100 * share) + " % of pixels off by more than 16";
  }
  if (reason.empty()) return true;
  if (!candidate.empty()) {
    writePng(candidate, image);
    reason += " (candidate written to " + candidate + ")";
  }
  if (why) *why = reason;
  return false;
}

}  // namespace msconv::viz
