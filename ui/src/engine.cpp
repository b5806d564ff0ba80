#include "msconv/ui/engine.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "msconv/data/dataset.h"
#include "msconv/data/ijb.h"
#include "msconv/data/image.h"
#include "msconv/data/pairs.h"
#include "msconv/error.h"
#include "msconv/eval/compare.h"
#include "msconv/eval/evaluate.h"
#include "msconv/eval/ijb.h"
#include "msconv/eval/study_report.h"
#include "msconv/eval/verification.h"
#include "msconv/inspect/inspect.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/complexity.h"
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

}  // namespace

std::vector<SetEvaluation> evaluateCheckpoint(const QString& checkpoint, const QStringList& bins) {
  eval::EvaluateOptions o;
  for (const auto& b : bins) o.sets.push_back(b.toStdString());
  std::vector<SetEvaluation> out;
  for (const auto& e : eval::evaluateCheckpoint(checkpoint.toStdString(), o).sets) {
    SetEvaluation s;
    s.name = QString::fromStdString(e.name);
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
    out.push_back(std::move(s));
  }
  return out;
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
  const auto x = data::loadFaceImage(image.toStdString(), 112);
  const auto spec = inspect::parseTargetSpec(target.toStdString());
  const at::Tensor ref = spec.kind == inspect::CamTarget::Kind::kCosine && !reference.isEmpty()
                             ? data::loadFaceImage(reference.toStdString(), 112)
                             : at::Tensor();
  inspect::CamOptions o;
  o.method = inspect::camMethodFromName(method.toStdString());
  std::vector<inspect::CamRow> rows;
  for (const auto& ck : checkpoints) {
    auto loaded = model::loadModel(ck.toStdString());
    const auto t = inspect::makeCamTarget(spec, *loaded.model, ck.toStdString(), ref);
    rows.push_back({inspect::camRowLabel(ck.toStdString(), loaded.op),
                    inspect::computeCams(*loaded.model, x, t, o)});
  }
  return toQImage(inspect::camFigure(inspect::tensorToBgr(x), rows,
                                     viz::colormapFromName(colormap.toStdString()), alpha, 112,
                                     method.toStdString() + ", target " + target.toStdString()));
}

InspectQueue::InspectQueue(QObject* parent) : QObject(parent) {
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
    std::function<QImage()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return quit_ || !pending_.empty(); });
      if (quit_) return;
      kind = pending_.begin()->first;
      job = std::move(pending_.begin()->second);
      pending_.erase(pending_.begin());
    }
    try {
      Q_EMIT ready(kind, job());
    } catch (const std::exception& e) {
      Q_EMIT failed(kind, QString::fromStdString(e.what()));
    }
  }
}

}  // namespace msconv::ui
