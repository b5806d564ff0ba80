#include "msconv/ui/engine.h"

#include <torch/torch.h>

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <opencv2/imgproc.hpp>

#include "msconv/atomic_file.h"
#include "msconv/data/dataset.h"
#include "msconv/data/decode.h"
#include "msconv/data/ijb.h"
#include "msconv/data/image.h"
#include "msconv/data/pairs.h"
#include "msconv/error.h"
#include "msconv/eval/compare.h"
#include "msconv/eval/det.h"
#include "msconv/eval/evaluate.h"
#include "msconv/eval/ijb.h"
#include "msconv/eval/pair_scores.h"
#include "msconv/eval/study_report.h"
#include "msconv/eval/verification.h"
#include "msconv/inspect/arrays.h"
#include "msconv/inspect/faithfulness.h"
#include "msconv/inspect/inspect.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/complexity.h"
#include "msconv/nn/inference.h"
#include "msconv/runtime.h"
#include "msconv/store/run_store.h"
#include "msconv/study/study.h"
#include "msconv/workspace/training_checkpoint.h"
#include "msconv/workspace/workspace.h"

namespace fs = std::filesystem;

namespace msconv::ui {
namespace {

QImage toQImage(const cv::Mat& bgr) {
  QImage img(bgr.data, bgr.cols, bgr.rows, static_cast<int>(bgr.step), QImage::Format_BGR888);
  return img.copy();  // owns its pixels
}

// A float map (h x w tensor or CV_32F matrix) as a row-major vector.
std::vector<float> valuesOf(const cv::Mat& f32) {
  CV_Assert(f32.type() == CV_32F);
  std::vector<float> out;
  out.reserve(f32.total());
  for (int y = 0; y < f32.rows; ++y)
    out.insert(out.end(), f32.ptr<float>(y), f32.ptr<float>(y) + f32.cols);
  return out;
}

cv::Mat toMat(const at::Tensor& map2d) {
  const auto t = map2d.detach().to(torch::kFloat).contiguous().cpu();
  return cv::Mat(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_32F,
                 const_cast<float*>(t.data_ptr<float>()))
      .clone();
}

QRect toQRect(const cv::Rect& r) {
  return QRect(r.x, r.y, r.width, r.height);
}

QString shapeText(const at::Tensor& t) {
  QStringList dims;
  for (const auto d : t.sizes()) dims << QString::number(d);
  return dims.join(" x ");
}

}  // namespace

std::vector<SetEvaluation> evaluateCheckpoint(const QString& checkpoint, const QStringList& bins,
                                              const QString& workspace,
                                              const SetProgress& progress) {
  setThreads(0);  // the calling (worker) thread's pool: $MSCONV_THREADS, else every core
  eval::EvaluateOptions o;
  if (progress)
    o.progress = [&progress](const std::string& set, int64_t done, int64_t total) {
      return progress(QString::fromStdString(set), done, total);
    };
  for (const auto& b : bins) o.sets.push_back(b.toStdString());
  o.workspace = workspace.toStdString();  // each set's per-pair scores kept there
  std::vector<SetEvaluation> out;
  const std::string ck = checkpoint.toStdString();
  for (const auto& e : eval::evaluateCheckpoint(ck, o).sets) {
    SetEvaluation s;
    s.name = QString::fromStdString(e.name);
    s.path = QString::fromStdString(e.path);
    s.is_ijb = e.is_ijb;
    if (e.is_ijb) {  // the 1:1 protocol: ROC only
      s.pairs = e.ijb.pairs;
      s.accuracy = s.accuracy_std = s.val = s.xnorm = std::nan("");
    } else {
      s.pairs = e.pairs.pairs;
      s.accuracy = e.pairs.accuracy, s.accuracy_std = e.pairs.accuracy_std, s.val = e.pairs.val;
      s.xnorm = e.pairs.xnorm;
    }
    s.tar_at_far = e.tarAtFar();
    s.auc = e.roc().auc;
    for (const auto& pt : eval::thinRoc(e.roc(), 400)) {
      s.roc_far.push_back(pt.far);
      s.roc_tar.push_back(pt.tar);
    }
    const eval::Det det = eval::computeDet(e.roc());
    for (const auto& pt : det.points) {
      s.det_fmr.push_back(pt.fmr);
      s.det_fnmr.push_back(pt.fnmr);
      s.det_threshold.push_back(pt.threshold);
    }
    s.eer = det.eer, s.eer_threshold = det.eer_threshold;
    auto scores = std::make_shared<eval::PairScores>(eval::pairScoresOf(e, ck));
    s.histogram = eval::scoreHistogram(scores->score.data(), scores->label.data(),
                                       static_cast<int64_t>(scores->size()), 60, 1e-3);
    if (!o.workspace.empty())
      s.scores_file = QString::fromStdString(eval::pairScoresFile(
          workspace::Workspace(o.workspace), ck, eval::keptSetName(e.path, o)));
    s.scores = std::move(scores);
    out.push_back(std::move(s));
  }
  return out;
}

std::map<QString, double> keptEers(const QString& workspace, const QString& checkpoint) {
  std::map<QString, double> out;
  const workspace::Workspace ws(workspace.toStdString());
  const std::string ck = checkpoint.toStdString();
  // The files of this checkpoint: named as pairScoresFile names them, any set.
  const fs::path probe = eval::pairScoresFile(ws, ck, "SET");
  const std::string probe_name = probe.filename().string();
  const size_t at = probe_name.find("SET");
  if (at == std::string::npos || !fs::is_directory(probe.parent_path())) return out;
  const std::string prefix = probe_name.substr(0, at), suffix = probe_name.substr(at + 3);
  for (const auto& entry : fs::directory_iterator(probe.parent_path())) {
    const std::string f = entry.path().filename().string();
    if (f.size() <= prefix.size() + suffix.size() || f.compare(0, prefix.size(), prefix) != 0 ||
        f.compare(f.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    try {
      const auto s = eval::readPairScores(entry.path().string());
      if (!s || !fs::exists(s->set_path) ||
          !eval::readPairScores(entry.path().string(),
                                eval::keptScoresKey(ck, s->set_path, eval::EvaluateOptions{})))
        continue;  // stale: the checkpoint or the set changed since (or other IJB options)
      const eval::Roc roc =
          eval::computeRoc(s->score.data(), s->label.data(), static_cast<int64_t>(s->size()),
                           eval::ijbFars(), entry.path().string());
      out[QString::fromStdString(s->set)] = eval::computeDet(roc).eer;
    } catch (const Error&) {  // a damaged file: no EER shown for it
    }
  }
  return out;
}

namespace {

// The sets the failure browser shows faces of, read once: the last few kept.
struct SetCache {
  std::mutex mu;
  std::vector<std::pair<std::string, std::shared_ptr<const data::PairSet>>> bins;
  std::vector<std::pair<std::string, std::shared_ptr<const data::IjbSet>>> ijbs;
  // IJB: template id -> its first face, per set.
  std::map<std::string, std::map<int64_t, size_t>> first_face;
};
SetCache& setCache() {
  static SetCache c;
  return c;
}

template <typename T, typename Load>
std::shared_ptr<const T> cached(std::vector<std::pair<std::string, std::shared_ptr<const T>>>& v,
                                const std::string& key, Load load) {
  for (const auto& [k, s] : v)
    if (k == key) return s;
  auto s = std::make_shared<const T>(load());
  v.emplace_back(key, s);
  if (v.size() > 3) v.erase(v.begin());
  return s;
}

std::shared_ptr<const data::PairSet> pairSetOf(const std::string& path) {
  auto& c = setCache();
  std::lock_guard<std::mutex> lock(c.mu);  // one reader at a time: a set is read once
  return cached(c.bins, path, [&] { return data::readPairsBin(path); });
}

}  // namespace

QImage setFace(const QString& set_path, bool is_ijb, int64_t index, int size) {
  const std::string path = set_path.toStdString();
  cv::Mat bgr;
  if (!is_ijb) {
    const auto set = pairSetOf(path);
    if (index < 0 || static_cast<size_t>(index) >= set->images.size())
      throw Error(path + ": no image " + std::to_string(index));
    const cv::Mat rgb = data::decodeFace(set->images[static_cast<size_t>(index)],
                                         path + " image " + std::to_string(index), size);
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  } else {
    auto& c = setCache();
    std::shared_ptr<const data::IjbSet> set;
    size_t face = 0;
    {
      std::lock_guard<std::mutex> lock(c.mu);
      set = cached(c.ijbs, path, [&] { return data::readIjb(path); });
      auto& firsts = c.first_face[path];
      if (firsts.empty())
        for (size_t i = set->faces.size(); i-- > 0;) firsts[set->faces[i].template_id] = i;
      const auto it = firsts.find(index);
      if (it == firsts.end()) throw Error(path + ": no template " + std::to_string(index));
      face = it->second;
    }
    cv::cvtColor(data::loadAlignedFace(*set, face, size), bgr, cv::COLOR_RGB2BGR);
  }
  return toQImage(bgr);
}

std::vector<RunHistory> runHistories(const QString& workspace) {
  std::vector<RunHistory> out;
  const auto store = workspace::Workspace(workspace.toStdString()).openStore();
  store::RunStore& db = *store;
  for (const auto& r : db.runs()) {
    RunHistory h;
    h.name = QString::fromStdString(r.name);
    std::map<int64_t, std::pair<double, std::map<std::string, double>>> by_step;
    for (const auto& m : db.metrics(r.id)) {
      auto& [wall, kv] = by_step[m.step];
      wall = std::max(wall, m.wall);
      kv[m.key] = m.value;
    }
    for (const auto& [step, entry] : by_step) {
      const auto& [wall, kv] = entry;
      auto get = [&kv = kv](const char* k) { return kv.count(k) ? kv.at(k) : 0.0; };
      if (kv.count("loss")) {
        h.steps.push_back(step);
        h.wall.push_back(wall);
        h.loss.push_back(kv.at("loss"));
        h.lr.push_back(get("lr"));
        h.samples_per_s.push_back(get("samples_per_s"));
        h.grad_norm.push_back(get("grad_norm"));
      }
      RunHistory::Validation v{step, wall, {}};
      for (const auto& [k, value] : kv)
        if (k.rfind("val/", 0) == 0) v.metrics[QString::fromStdString(k)] = value;
      if (!v.metrics.empty()) h.validations.push_back(std::move(v));
    }
    out.push_back(std::move(h));
  }
  return out;
}

QString studyReportJson(const QString& workspace, const QString& study,
                        const std::function<void(const QString&)>& progress) {
  setThreads(0);  // the calling (worker) thread's pool: $MSCONV_THREADS, else every core
  const workspace::Workspace ws(workspace.toStdString());
  const auto s = study::loadStudy(ws, study.toStdString());
  eval::StudyReportOptions o;
  if (progress)
    o.progress = [&progress](const std::string& line) { progress(QString::fromStdString(line)); };
  return QString::fromStdString(eval::studyReport(ws, s, o));
}

QString formatStudyReport(const QString& json, const QString& format) {
  try {
    return QString::fromStdString(
        eval::formatStudyReport(json.toStdString(), format.toStdString()));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // a document of another shape (nlohmann's errors)
    throw Error(std::string("study report: not a report document: ") + e.what());
  }
}

QStringList runNames(const QString& workspace) {
  QStringList out;
  for (const auto& r : workspace::Workspace(workspace.toStdString()).openStore()->runs())
    out << QString::fromStdString(r.name);
  return out;
}

std::vector<std::pair<QString, QString>> runCheckpoints(const QString& workspace) {
  std::vector<std::pair<QString, QString>> out;
  const workspace::Workspace ws(workspace.toStdString());
  for (const auto& r : ws.openStore()->runs()) {
    const std::string ck = ws.runCheckpoint(r.name);
    if (!ck.empty()) out.emplace_back(QString::fromStdString(r.name), QString::fromStdString(ck));
  }
  return out;
}

CompareRow compareModelFile(const QString& path, const QStringList& bins) {
  setThreads(0);  // the calling (worker) thread's pool
  auto loaded = model::loadModel(path.toStdString());
  const auto cost = eval::modelCost(*loaded.model);
  CompareRow r;
  r.name = QFileInfo(path).fileName();
  r.op = QString::fromStdString(cost.op);
  r.status = "file";
  r.params_m = cost.params_m;
  r.gmacs = cost.gmacs;
  r.samples_per_s = std::nan("");
  std::vector<std::string> sets;
  QStringList names;
  for (const auto& b : bins) sets.push_back(b.toStdString()), names << QFileInfo(b).fileName();
  for (const auto& [k, v] : eval::pairSetMetrics(*loaded.model, sets))
    r.metrics[QString::fromStdString(k)] = v;
  r.validation = "evaluated on " + names.join(", ");
  return r;
}

std::vector<CompareRow> compareRuns(const QString& workspace) {
  std::vector<CompareRow> rows;
  for (const auto& s : eval::summariseRuns(workspace::Workspace(workspace.toStdString()))) {
    CompareRow row;
    row.name = QString::fromStdString(s.name);
    row.op = QString::fromStdString(s.op);
    row.status = store::statusName(s.status);
    row.params_m = s.params_m, row.gmacs = s.gmacs;
    row.samples_per_s = std::max(0.0, s.samples_per_s);
    for (const auto& [k, v] : s.metrics) row.metrics[QString::fromStdString(k)] = v;
    if (s.metrics_step >= 0)
      row.validation = QString("%1, step %2")
                           .arg(s.metrics_of_best ? "best.ckpt" : "last")
                           .arg(static_cast<qlonglong>(s.metrics_step));
    rows.push_back(std::move(row));
  }
  return rows;
}

QStringList operatorLayers(const QString& checkpoint) {
  auto loaded = model::loadModel(checkpoint.toStdString());
  QStringList out;
  for (const auto& l : loaded.model->operatorLayers()) out << QString::fromStdString(l);
  return out;
}

QString trainingSetOf(const QString& checkpoint) {
  return QString::fromStdString(workspace::checkpointTrainingSet(checkpoint.toStdString()));
}

std::vector<std::pair<QString, qint64>> datasetSamples(const QString& dataset, int max) {
  const auto set = data::openTrainingSet(dataset.toStdString());
  std::vector<std::pair<QString, qint64>> out;
  int last = -1;
  const size_t scan = std::min<size_t>(set->size(), 200000);
  for (size_t i = 0; i < scan && static_cast<int>(out.size()) < max; ++i) {
    const int label = set->label(i);
    if (label == last) continue;
    last = label;
    std::string where = set->describe(i);
    if (set->kind() == "folder") where = fs::path(where).lexically_relative(set->path()).string();
    out.emplace_back(QString("identity %1: %2").arg(label).arg(QString::fromStdString(where)),
                     static_cast<qint64>(i));
  }
  return out;
}

QString datasetImageFile(const QString& dataset, qint64 index) {
  const auto set = data::openTrainingSet(dataset.toStdString());
  if (index < 0 || static_cast<size_t>(index) >= set->size())
    throw Error(dataset.toStdString() + ": no sample " + std::to_string(index));
  if (set->kind() == "folder") {
    const fs::path p = set->describe(static_cast<size_t>(index));
    if (fs::exists(p)) return QString::fromStdString(p.string());
  }
  // A record: its encoded image in a file named after the set (path, size, time) and index,
  // written once (beside, then renamed into place, so a cut write never leaves a broken image
  // under that name).
  const fs::path dir = fs::temp_directory_path() / "msconv-lab";
  std::error_code ec;
  const std::string key =
      set->path() + ":" + std::to_string(fs::file_size(set->path(), ec)) + ":" +
      std::to_string(fs::last_write_time(set->path(), ec).time_since_epoch().count());
  const std::string stem =
      "sample-" + std::to_string(std::hash<std::string>{}(key)) + "-" + std::to_string(index);
  for (const char* ext : {".jpg", ".png"})
    if (fs::exists(dir / (stem + ext)))
      return QString::fromStdString((dir / (stem + ext)).string());
  const std::string bytes = set->encoded(static_cast<size_t>(index));
  const bool png = bytes.size() > 4 && static_cast<unsigned char>(bytes[0]) == 0x89;
  const fs::path out = dir / (stem + (png ? ".png" : ".jpg")), part = out.string() + ".part";
  fs::create_directories(dir);
  std::ofstream f(part, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f)
    throw Error(part.string() + ": cannot write " + set->describe(static_cast<size_t>(index)));
  fs::rename(part, out);
  return QString::fromStdString(out.string());
}

QImage featureMapFigure(const QString& checkpoint, const QString& image, const QString& layer,
                        int top, const QString& colormap, bool shared_scale) {
  auto loaded = model::loadModel(checkpoint.toStdString());
  nn::prepareInference(*loaded.model);  // no gradients here: the inference form
  const auto x = data::loadFaceImage(image.toStdString(), 112);
  const auto maps = inspect::captureBranchMaps(*loaded.model, x, layer.toStdString(), top);
  inspect::FeatureFigureOptions o;
  o.colormap = viz::colormapFromName(colormap.toStdString());
  o.shared_scale = shared_scale;
  return toQImage(inspect::featureMapFigure(maps, o));
}

QImage gradcamFigure(const QStringList& checkpoints, const QString& image, const QString& method,
                     const QString& target, const QString& reference, const QString& colormap,
                     double alpha) {
  // The same picture as the figure with its values (one drawing of the CAM grid).
  return gradcamValuesFigure(checkpoints, image, method, target, reference, colormap, alpha).image;
}

InspectFigure featureMapsFigure(const QStringList& checkpoints, const QString& image,
                                const QString& layer, int top, const QString& colormap,
                                bool shared_scale) {
  const auto x = data::loadFaceImage(image.toStdString(), 112);
  const auto cmap = viz::colormapFromName(colormap.toStdString());
  struct Block {
    QString label;
    inspect::BranchMaps maps;
  };
  std::vector<Block> blocks;
  QStringList notes;
  for (const auto& ck : checkpoints) {
    auto loaded = model::loadModel(ck.toStdString());
    const QString label = QString::fromStdString(inspect::camRowLabel(ck.toStdString(), loaded.op));
    const auto layers = loaded.model->operatorLayers();
    if (!layer.isEmpty() &&
        std::find(layers.begin(), layers.end(), layer.toStdString()) == layers.end()) {
      notes << QString("%1: no operator layer %2, not drawn").arg(label, layer);
      continue;
    }
    nn::prepareInference(*loaded.model);  // no gradients here: the inference form
    Block b{label, inspect::captureBranchMaps(*loaded.model, x, layer.toStdString(), top)};
    if (!blocks.empty()) {
      const auto& first = blocks.front().maps;
      const bool same = first.maps.front().sizes() == b.maps.maps.front().sizes() &&
                        first.maps.back().sizes() == b.maps.maps.back().sizes();
      if (same)
        b.maps.channels = first.channels;  // the same channels, side by side
      else
        notes << QString("%1: maps of %2 (%3 has %4): its own top %5 channels")
                     .arg(label, shapeText(b.maps.maps.back()), blocks.front().label,
                          shapeText(first.maps.back()))
                     .arg(b.maps.channels.size());
    }
    blocks.push_back(std::move(b));
  }
  if (blocks.empty()) throw Error("feature maps: " + notes.join("; ").toStdString());
  // One scale per branch row across every model's shown channels, when asked.
  std::map<std::string, std::pair<double, double>> range;
  if (shared_scale)
    for (const auto& b : blocks)
      for (size_t r = 0; r < b.maps.maps.size(); ++r)
        for (int64_t ch : b.maps.channels) {
          if (ch >= b.maps.maps[r].size(0)) continue;
          const auto m = b.maps.maps[r][ch];
          const double lo = m.min().item<double>(), hi = m.max().item<double>();
          auto it = range.find(b.maps.rows[r]);
          if (it == range.end())
            range[b.maps.rows[r]] = {lo, hi};
          else
            it->second = {std::min(it->second.first, lo), std::max(it->second.second, hi)};
        }
  InspectFigure fig;
  fig.kind = "featuremaps";
  std::vector<cv::Mat> pictures;
  std::vector<int> xs;
  std::vector<size_t> first_tile;  // each block's first tile in fig.tiles
  const int pad = 8, gap = 24;
  int width = pad, height = 0;
  for (const auto& b : blocks) {
    fig.models << b.label;
    viz::Grid g;
    g.tile = 96;
    g.title = b.label.toStdString();
    for (int64_t ch : b.maps.channels) {
      std::string label = "ch " + std::to_string(ch);
      if (b.maps.gate.defined() && ch < b.maps.gate.size(0)) {
        char buf[24];
        std::snprintf(buf, sizeof buf, " c=%.2f", b.maps.gate[ch].item<double>());
        label += buf;
      }
      g.col_labels.push_back(label);
    }
    std::vector<FigureTile> tiles;
    std::vector<std::pair<size_t, size_t>> cell;  // each tile's (row, column) in the grid
    for (size_t r = 0; r < b.maps.maps.size(); ++r) {
      g.row_labels.push_back(b.maps.rows[r]);
      const auto& m = b.maps.maps[r];
      std::vector<cv::Mat> row;
      for (int64_t ch : b.maps.channels) {
        if (ch >= m.size(0)) {  // a part with fewer channels (SCConv's halves)
          row.emplace_back();
          continue;
        }
        const cv::Mat map = toMat(m[ch]);
        cv::Mat scaled;
        if (shared_scale) {
          const auto [lo, hi] = range.at(b.maps.rows[r]);
          scaled = hi > lo ? cv::Mat((map - lo) / (hi - lo)) : cv::Mat::zeros(map.size(), CV_32F);
        } else {
          scaled = viz::scale01(map);
        }
        row.push_back(viz::applyColormap(scaled, cmap));
        FigureTile t;
        t.model = b.label;
        t.layer = QString::fromStdString(b.maps.layer);
        t.row = QString::fromStdString(b.maps.rows[r]);
        t.channel = static_cast<int>(ch);
        t.width = map.cols, t.height = map.rows;
        t.values = valuesOf(map);
        t.picture = toQImage(row.back());
        tiles.push_back(std::move(t));
        cell.emplace_back(r, row.size() - 1);
      }
      g.cells.push_back(row);
    }
    std::vector<std::vector<cv::Rect>> rects;
    pictures.push_back(viz::renderGrid(g, &rects));
    first_tile.push_back(fig.tiles.size());
    for (size_t i = 0; i < tiles.size(); ++i) {
      tiles[i].rect = toQRect(rects[cell[i].first][cell[i].second]);  // moved into place below
      fig.tiles.push_back(std::move(tiles[i]));
    }
    xs.push_back(width);
    width += pictures.back().cols + gap;
    height = std::max(height, pictures.back().rows);
  }
  width += pad - gap;
  // The header: what is drawn, then the notes, a line each.
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  std::vector<std::string> lines;
  lines.push_back(
      blocks.front().maps.layer + "   top " + std::to_string(blocks.front().maps.channels.size()) +
      " channels by energy (" + blocks.front().label.toStdString() + ")   " +
      (shared_scale ? "one scale per row" : "per-channel scale") + "   " + viz::colormapName(cmap));
  for (const auto& n : notes) lines.push_back("! " + n.toStdString());
  for (const auto& l : lines) {
    int base = 0;
    width = std::max(width, 2 * pad + cv::getTextSize(l, font, 0.5, 1, &base).width);
  }
  const int header = pad + 20 * static_cast<int>(lines.size());
  cv::Mat out(header + height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  for (size_t i = 0; i < lines.size(); ++i)
    cv::putText(out, lines[i], {pad, pad + 14 + 20 * static_cast<int>(i)}, font, 0.5,
                i == 0 ? cv::Scalar(30, 30, 30) : cv::Scalar(30, 30, 200), 1, cv::LINE_AA);
  first_tile.push_back(fig.tiles.size());
  for (size_t k = 0; k < pictures.size(); ++k) {
    pictures[k].copyTo(out(cv::Rect(xs[k], header, pictures[k].cols, pictures[k].rows)));
    if (k > 0)
      cv::line(out, {xs[k] - gap / 2, header + 4}, {xs[k] - gap / 2, header + height - 4},
               cv::Scalar(200, 200, 200), 1);
    for (size_t t = first_tile[k]; t < first_tile[k + 1]; ++t)
      fig.tiles[t].rect.translate(xs[k], header);
  }
  fig.image = toQImage(out);
  fig.note = notes.join("\n");
  return fig;
}

InspectFigure gradcamValuesFigure(const QStringList& checkpoints, const QString& image,
                                  const QString& method, const QString& target,
                                  const QString& reference, const QString& colormap, double alpha) {
  const auto x = data::loadFaceImage(image.toStdString(), 112);
  const auto spec = inspect::parseTargetSpec(target.toStdString());
  const at::Tensor ref = spec.kind == inspect::CamTarget::Kind::kCosine && !reference.isEmpty()
                             ? data::loadFaceImage(reference.toStdString(), 112)
                             : at::Tensor();
  inspect::CamOptions o;
  o.method = inspect::camMethodFromName(method.toStdString());
  const auto cmap = viz::colormapFromName(colormap.toStdString());
  const cv::Mat face = inspect::tensorToBgr(x);
  InspectFigure fig;
  fig.kind = "gradcam";
  QStringList notes;
  // The grid inspect::camFigure draws (rows = models, columns = layers and their mean), the
  // tiles' CAMs kept.
  viz::Grid g;
  g.tile = 112;
  g.title = method.toStdString() + ", target " + target.toStdString();
  std::vector<FigureTile> tiles;
  std::vector<std::pair<int, int>> where;
  std::vector<std::string> first_layers;
  for (const auto& ck : checkpoints) {
    auto loaded = model::loadModel(ck.toStdString());
    const auto t = inspect::makeCamTarget(spec, *loaded.model, ck.toStdString(), ref);
    const std::string label = inspect::camRowLabel(ck.toStdString(), loaded.op);
    const auto cams = inspect::computeCams(*loaded.model, x, t, o);
    fig.models << QString::fromStdString(label);
    if (g.row_labels.empty())
      first_layers = cams.layers;
    else if (cams.layers != first_layers)
      notes << QString::fromStdString(label + ": other layers than the first row's (" +
                                      std::to_string(cams.layers.size()) + ")");
    g.row_labels.push_back(label);
    std::vector<cv::Mat> cells;
    std::vector<cv::Mat> maps = cams.cams;
    std::vector<std::string> names = cams.layers;
    if (cams.cams.size() > 1 || first_layers.size() > 1) {
      maps.push_back(cams.average());
      names.push_back("mean");
    }
    for (size_t c = 0; c < maps.size(); ++c) {
      cells.push_back(viz::overlay(face, maps[c], cmap, alpha));
      FigureTile tile;
      tile.model = QString::fromStdString(label);
      tile.layer = QString::fromStdString(names[c]);
      tile.row = "CAM";
      tile.width = maps[c].cols, tile.height = maps[c].rows;
      tile.values = valuesOf(maps[c]);
      tile.picture = toQImage(cells.back());
      tiles.push_back(std::move(tile));
      where.emplace_back(static_cast<int>(g.cells.size()), static_cast<int>(c));
    }
    g.cells.push_back(cells);
  }
  size_t ncols = 0;
  for (const auto& r : g.cells) ncols = std::max(ncols, r.size());
  g.col_labels = first_layers;
  if (ncols > 1) g.col_labels.push_back("mean");
  std::vector<std::vector<cv::Rect>> rects;
  fig.image = toQImage(viz::renderGrid(g, &rects));
  for (size_t i = 0; i < tiles.size(); ++i) {
    tiles[i].rect =
        toQRect(rects[static_cast<size_t>(where[i].first)][static_cast<size_t>(where[i].second)]);
    fig.tiles.push_back(std::move(tiles[i]));
  }
  fig.note = notes.join("\n");
  return fig;
}

namespace {

// Image i of a .bin set as the network's input (3 x 112 x 112 in [-1, 1]).
at::Tensor pairImage(const data::PairSet& set, size_t i) {
  if (i >= set.images.size()) throw Error(set.path + ": no image " + std::to_string(i));
  return data::faceTensor(
      data::decodeFace(set.images[i], set.path + " image " + std::to_string(i)));
}

std::vector<std::string> stdStrings(const QStringList& list) {
  std::vector<std::string> out;
  for (const auto& s : list) out.push_back(s.toStdString());
  return out;
}

}  // namespace

QImage pairCamFigure(const QStringList& checkpoints, const QString& bin, int64_t pair,
                     const QString& method, const QStringList& layers, const QString& colormap,
                     double alpha) {
  const auto set = pairSetOf(bin.toStdString());
  if (pair < 0 || static_cast<size_t>(pair) >= set->pairs())
    throw Error(set->path + ": no pair " + std::to_string(pair));
  const at::Tensor a = pairImage(*set, 2 * static_cast<size_t>(pair)),
                   b = pairImage(*set, 2 * static_cast<size_t>(pair) + 1);
  inspect::CamOptions o;
  o.method = inspect::camMethodFromName(method.toStdString());
  o.layers = stdStrings(layers);
  std::vector<inspect::CamRow> rows_a, rows_b;
  for (const auto& ck : checkpoints) {
    auto loaded = model::loadModel(ck.toStdString());
    const std::string label = inspect::camRowLabel(ck.toStdString(), loaded.op);
    auto cams = inspect::pairCams(*loaded.model, a, b, o);
    rows_a.push_back({label, std::move(cams.a)});
    rows_b.push_back({label, std::move(cams.b)});
  }
  const auto cmap = viz::colormapFromName(colormap.toStdString());
  const std::string title = method.toStdString() + ", pair " + std::to_string(pair) + ", ";
  const cv::Mat fa = inspect::camFigure(inspect::tensorToBgr(a), rows_a, cmap, alpha, 112,
                                        title + "image A for its cosine to B");
  const cv::Mat fb = inspect::camFigure(inspect::tensorToBgr(b), rows_b, cmap, alpha, 112,
                                        title + "image B for its cosine to A");
  // Side by side, a white gap between, the shorter one padded at the bottom.
  cv::Mat out(std::max(fa.rows, fb.rows), fa.cols + 16 + fb.cols, CV_8UC3,
              cv::Scalar(255, 255, 255));
  fa.copyTo(out(cv::Rect(0, 0, fa.cols, fa.rows)));
  fb.copyTo(out(cv::Rect(fa.cols + 16, 0, fb.cols, fb.rows)));
  return toQImage(out);
}

std::vector<FaithfulnessRow> faithfulness(const std::vector<std::pair<QString, QString>>& models,
                                          const QString& bin, int n, const QStringList& methods,
                                          const QStringList& layers,
                                          const std::function<bool()>& cancelled) {
  setThreads(0);
  const auto set = pairSetOf(bin.toStdString());
  std::vector<FaithfulnessRow> out;
  for (const auto& [label, ck] : models) {
    if (cancelled && cancelled()) throw Cancelled{};
    auto loaded = model::loadModel(ck.toStdString());
    for (const auto& m : methods) {
      if (cancelled && cancelled()) throw Cancelled{};
      inspect::CamOptions o;
      o.method = inspect::camMethodFromName(m.toStdString());
      o.layers = stdStrings(layers);
      for (const auto& r :
           inspect::faithfulnessOnPairs(*loaded.model, label.toStdString(), *set, n, o)) {
        FaithfulnessRow row;
        row.model = QString::fromStdString(r.model);
        row.layer = QString::fromStdString(r.layer);
        row.method = QString::fromStdString(r.method);
        row.pairs = r.pairs;
        row.deletion_auc = r.deletion_auc, row.insertion_auc = r.insertion_auc;
        row.road_most = r.road_most, row.road_least = r.road_least;
        row.road_combined = r.road_combined, row.drop = r.drop, row.increase = r.increase;
        out.push_back(std::move(row));
      }
    }
  }
  return out;
}

namespace {

QStringList toStringList(const std::vector<std::string>& v) {
  QStringList out;
  for (const auto& s : v) out << QString::fromStdString(s);
  return out;
}

}  // namespace

QStringList exportCamArrays(const QStringList& checkpoints, const QString& image,
                            const QString& method, const QString& target, const QString& reference,
                            const QString& dir) {
  setThreads(0);  // the calling (worker) thread's pool: $MSCONV_THREADS, else every core
  const auto x = data::loadFaceImage(image.toStdString(), 112);
  const auto spec = inspect::parseTargetSpec(target.toStdString());
  const at::Tensor ref = spec.kind == inspect::CamTarget::Kind::kCosine && !reference.isEmpty()
                             ? data::loadFaceImage(reference.toStdString(), 112)
                             : at::Tensor();
  inspect::CamOptions o;
  o.method = inspect::camMethodFromName(method.toStdString());
  const std::string method_name = inspect::camMethodName(o.method);
  inspect::ArrayFolder out(dir.toStdString());
  for (int k = 0; k < checkpoints.size(); ++k) {
    const std::string ck = checkpoints[k].toStdString();
    auto loaded = model::loadModel(ck);
    const auto t = inspect::makeCamTarget(spec, *loaded.model, ck, ref);
    out.addCams(k, inspect::camRowLabel(ck, loaded.op),
                inspect::computeCams(*loaded.model, x, t, o), method_name, target.toStdString());
  }
  return toStringList(out.finish());
}

QStringList exportFeatureMapArrays(const QString& checkpoint, const QString& image,
                                   const QString& layer, int top, const QString& dir) {
  setThreads(0);  // the calling (worker) thread's pool: $MSCONV_THREADS, else every core
  const std::string ck = checkpoint.toStdString();
  auto loaded = model::loadModel(ck);
  nn::prepareInference(*loaded.model);  // no gradients here: the inference form
  const auto x = data::loadFaceImage(image.toStdString(), 112);
  const auto maps = inspect::captureBranchMaps(*loaded.model, x, layer.toStdString(), top);
  inspect::ArrayFolder out(dir.toStdString());
  out.addBranchMaps(inspect::camRowLabel(ck, loaded.op), maps);
  return toStringList(out.finish());
}

InspectQueue::InspectQueue(QObject* parent) : QObject(parent) {
  qRegisterMetaType<InspectFigure>();
  thread_ = std::thread([this] { loop(); });
}

InspectQueue::~InspectQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void InspectQueue::submit(const QString& kind, std::function<QImage()> job) {
  submitFigure(kind, [job = std::move(job)] {
    InspectFigure f;
    f.image = job();
    return f;
  });
}

void InspectQueue::submitFigure(const QString& kind, std::function<InspectFigure()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.count(kind)) ++superseded_;
    pending_[kind] = std::move(job);
  }
  cv_.notify_one();
}

void InspectQueue::loop() {
  setThreads(0);
  for (;;) {
    QString kind;
    std::function<InspectFigure()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return quit_ || !pending_.empty(); });
      if (quit_) return;
      kind = pending_.begin()->first;
      job = std::move(pending_.begin()->second);
      pending_.erase(pending_.begin());
    }
    try {
      InspectFigure f = job();
      if (f.kind.isEmpty()) f.kind = kind;
      Q_EMIT ready(kind, f.image);
      Q_EMIT figureReady(kind, f);
    } catch (const std::exception& e) {
      Q_EMIT failed(kind, QString::fromStdString(e.what()));
    }
  }
}

}  // namespace msconv::ui
