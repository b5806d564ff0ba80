#include "msconv/train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "msconv/data/dataset.h"
#include "msconv/data/loader.h"
#include "msconv/data/pairs.h"
#include "msconv/data/synth.h"
#include "msconv/error.h"
#include "msconv/eval/verification.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/backbone.h"
#include "msconv/runtime.h"
#include "msconv/store/run_store.h"
#include "msconv/train/margin.h"
#include "util/torch_error.h"

namespace fs = std::filesystem;

namespace msconv::train {
namespace {

using Clock = std::chrono::steady_clock;

MarginSpec marginFrom(const Config& c) {
  MarginSpec m = marginPreset(c.text("loss.type"));
  m.s = c.real("loss.s");
  if (c.real("loss.m1") >= 0) m.m1 = c.real("loss.m1");
  if (c.real("loss.m2") >= 0) m.m2 = c.real("loss.m2");
  if (c.real("loss.m3") >= 0) m.m3 = c.real("loss.m3");
  return m;
}

// The synthetic set lives in the workspace, keyed by its size and seed, generated once.
std::string syntheticSet(const Config& c, const std::string& workspace) {
  const std::string dir = (fs::path(workspace) / "datasets" /
                           ("synthetic-" + std::to_string(c.integer("data.synthetic_identities")) +
                            "x" + std::to_string(c.integer("data.synthetic_images_per_id")) +
                            "-seed" + std::to_string(c.integer("seed"))))
                              .string();
  if (!fs::exists(fs::path(dir) / "synth.json")) {
    data::SynthOptions o;
    o.identities = static_cast<int>(c.integer("data.synthetic_identities"));
    o.images_per_id = static_cast<int>(c.integer("data.synthetic_images_per_id"));
    o.seed = static_cast<uint64_t>(c.integer("seed")) + 1;
    o.pairs = 1000;
    const std::string tmp = dir + ".partial";
    fs::remove_all(tmp);
    data::generateSyntheticFaces(tmp, o);
    fs::remove_all(dir);
    fs::rename(tmp, dir);
  }
  return dir;
}

struct State {
  int64_t step = 0;
  double best = -1;
};

void saveTraining(const std::string& path, nn::BackboneImpl& model, MarginHeadImpl& head,
                  torch::optim::SGD& opt, const Config& c, int64_t step, double best) {
  torch::serialize::OutputArchive a;
  model::writeModelEntries(a, model);
  a.write("config", c10::IValue(c.toJson()));
  a.write("step", c10::IValue(step));
  a.write("best", c10::IValue(best));
  torch::serialize::OutputArchive h, o;
  head.save(h);
  opt.save(o);
  a.write("head", h);
  a.write("optimizer", o);
  a.write("rng", at::detail::getDefaultCPUGenerator().get_state(), /*is_buffer=*/true);
  model::saveArchiveAtomically(a, path);
}

}  // namespace

double learningRate(const Config& c, int64_t step, int64_t total, int64_t steps_per_epoch) {
  const double lr = c.real("train.lr"), floor = c.real("train.lr_min");
  const double warm = c.real("train.warmup_epochs") * steps_per_epoch;
  if (warm > 0 && step < warm) return lr * (step + 1) / warm;
  const std::string& s = c.text("train.schedule");
  const double t = total > warm ? (step - warm) / (total - warm) : 1.0;
  if (s == "cosine") return floor + (lr - floor) * 0.5 * (1 + std::cos(M_PI * std::min(1.0, t)));
  if (s == "poly") return lr * std::pow(std::max(0.0, 1.0 - t), 2.0);
  return lr;
}

Trainer::Trainer(Config config, std::string workspace, std::string name)
    : config_(std::move(config)), workspace_(std::move(workspace)), name_(std::move(name)) {}

void Trainer::emit(const TrainEvent& e) {
  for (auto& o : observers_) o(e);
}

TrainResult Trainer::run(const std::string& resume) {
  store::RunStore db(workspace_);
  // Resuming: the checkpoint's configuration wins, so the run continues as it was.
  std::string resume_ckpt;
  torch::serialize::InputArchive resumed;  // read once: configuration now, state further down
  std::optional<store::RunRow> row;
  if (!resume.empty()) {
    if (fs::is_regular_file(resume)) {
      resume_ckpt = resume;
    } else {
      row = db.findRun(resume);
      if (!row)
        throw Error("--resume: '" + resume + "' is neither a checkpoint file nor a run in " +
                    db.path());
      resume_ckpt = (fs::path(workspace_) / "runs" / row->name / "last.ckpt").string();
      if (!fs::exists(resume_ckpt))
        throw Error("--resume: run '" + row->name + "' has no checkpoint yet (" + resume_ckpt +
                    ")");
    }
    try {
      resumed.load_from(resume_ckpt);
    } catch (const c10::Error&) {
      throw Error(resume_ckpt + ": not an MSConv Lab checkpoint");
    }
    c10::IValue cfg;
    if (!resumed.try_read("config", cfg) || !cfg.isString())
      throw Error(resume_ckpt +
                  ": a model checkpoint without training state; cannot resume from it");
    config_ = Config::fromJson(cfg.toStringRef(), resume_ckpt);
  }
  const Config& c = config_;
  if (c.flag("train.amp"))
    throw Error(
        "train.amp: mixed precision runs on CUDA devices, and this trainer runs on the CPU");
  setThreads(static_cast<int>(c.integer("train.threads")));
  torch::manual_seed(static_cast<uint64_t>(c.integer("seed")));

  // Data.
  std::string train_path = c.text("data.train");
  std::vector<std::string> val_paths;
  if (train_path == "synthetic" ||
      (!c.list("data.val").empty() && c.list("data.val")[0] == "synthetic")) {
    const std::string syn = syntheticSet(c, workspace_);
    if (train_path == "synthetic") train_path = syn;
    for (const auto& v : c.list("data.val"))
      val_paths.push_back(v == "synthetic" ? syn + "/val.bin" : v);
  } else {
    val_paths = c.list("data.val");
  }
  std::shared_ptr<const data::FaceDataset> dataset = data::openTrainingSet(train_path);
  std::vector<data::PairSet> val_sets;
  for (const auto& v : val_paths) val_sets.push_back(data::readPairsBin(v));
  data::LoaderOptions lo;
  lo.batch_size = static_cast<int>(c.integer("train.batch_size"));
  lo.threads = static_cast<int>(c.integer("data.threads"));
  lo.seed = static_cast<uint64_t>(c.integer("seed"));
  lo.flip = c.flag("data.flip");
  lo.channels_last = c.flag("data.channels_last");
  data::DataLoader loader(dataset, lo);
  const int64_t accum = c.integer("train.accum");
  const int64_t batches = loader.batchesPerEpoch();
  if (batches < accum)
    throw Error("data.train: " + std::to_string(dataset->size()) +
                " images make no full batch of " + std::to_string(lo.batch_size) +
                (accum > 1 ? " x " + std::to_string(accum) : ""));
  const int64_t steps_per_epoch = batches / accum;
  int64_t total = steps_per_epoch * c.integer("train.epochs");
  if (c.integer("train.max_steps") > 0) total = std::min(total, c.integer("train.max_steps"));

  // Model, head, optimizer.
  auto model = nn::makeBackbone(c.text("model.arch"), c.text("model.op"));
  MarginHead head(model->embeddingDim(), dataset->numClasses(), marginFrom(c),
                  c.real("loss.sample_rate"));
  if (lo.channels_last) nn::toChannelsLast(*model);
  std::vector<torch::Tensor> params;
  for (auto& p : model->parameters())
    if (p.requires_grad()) params.push_back(p);
  for (auto& p : head->parameters()) params.push_back(p);
  torch::optim::SGD opt(params, torch::optim::SGDOptions(c.real("train.lr"))
                                    .momentum(c.real("train.momentum"))
                                    .weight_decay(c.real("train.weight_decay")));
  State st;
  if (!resume_ckpt.empty()) {
    torch::serialize::InputArchive& a = resumed;
    torch::serialize::InputArchive m, h, o;
    a.read("model", m);
    a.read("head", h);
    a.read("optimizer", o);
    try {
      model->load(m);
      head->load(h);
      opt.load(o);
    } catch (const c10::Error& e) {
      throw Error(resume_ckpt +
                  ": training state does not fit the configuration: " + util::firstLine(e));
    }
    c10::IValue step, best;
    a.read("step", step);
    a.read("best", best);
    st.step = step.toInt();
    st.best = best.toDouble();
    torch::Tensor rng;
    a.read("rng", rng, true);
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng);
  }

  // The run: a folder and a row in the store.
  store::RunRow run;
  if (row) {
    run = *row;
    db.reopen(run.id);
  } else {
    const std::string name =
        !name_.empty() ? name_ : model->arch().name + "-" + model->op().baseName();
    run = db.createRun(name, c.toJson(), model->arch().name, model->op().str());
  }
  const fs::path dir = fs::path(workspace_) / "runs" / run.name;
  fs::create_directories(dir);
  std::ofstream log(dir / "train.log", std::ios::app);
  { std::ofstream(dir / "config.json") << c.toJson() << "\n"; }
  TrainResult result;
  result.run_name = run.name;
  result.run_dir = dir.string();
  {
    TrainEvent e;
    e.kind = TrainEvent::Kind::kStart;
    e.step = st.step;
    e.total_steps = total;
    e.message = run.name;
    emit(e);
  }

  std::vector<std::string> kept;  // step checkpoints, oldest first
  const std::string last_path = (dir / "last.ckpt").string(),
                    best_path = (dir / "best.ckpt").string();
  auto checkpoint = [&](int64_t step) {
    const std::string p = (dir / ("step-" + std::to_string(step) + ".ckpt")).string();
    saveTraining(p, *model, *head, opt, c, step, st.best);
    // last.ckpt is a second name for the same file (no second write), swapped in atomically;
    // it stays valid when the step file is later pruned.
    fs::remove(last_path + ".tmp");
    fs::create_hard_link(p, last_path + ".tmp");
    fs::rename(last_path + ".tmp", last_path);
    db.addArtifact(run.id, "checkpoint", p, step);
    kept.push_back(p);
    while (static_cast<int64_t>(kept.size()) > c.integer("train.keep_last")) {
      fs::remove(kept.front());
      db.removeArtifact(run.id, kept.front());
      kept.erase(kept.begin());
    }
    TrainEvent e;
    e.kind = TrainEvent::Kind::kCheckpoint;
    e.step = step;
    e.message = p;
    emit(e);
    log << "checkpoint step " << step << " " << p << std::endl;
  };
  auto validate = [&](int64_t step) {
    TrainEvent e;
    e.kind = TrainEvent::Kind::kValidation;
    e.step = step;
    std::vector<std::pair<std::string, double>> kv;
    double mean_acc = 0;
    for (const auto& set : val_sets) {
      const auto r = eval::verifyPairs(*model, set, 64);
      const std::string key = "val/" + fs::path(set.path).filename().string();
      e.metrics[key + "/accuracy"] = r.accuracy;
      e.metrics[key + "/accuracy_std"] = r.accuracy_std;
      e.metrics[key + "/xnorm"] = r.xnorm;
      for (const auto& [far, tar] : r.tar_at_far) {
        char name[48];
        std::snprintf(name, sizeof name, "/tar@far=%.0e", far);
        e.metrics[key + name] = tar;
      }
      mean_acc += r.accuracy / val_sets.size();
    }
    for (const auto& [k, v] : e.metrics) kv.emplace_back(k, v);
    if (!kv.empty()) db.addMetrics(run.id, step, kv);
    result.last_validation = e.metrics;
    emit(e);
    for (const auto& [k, v] : e.metrics) log << "step " << step << " " << k << " " << v << "\n";
    log.flush();
    if (!val_sets.empty() && mean_acc > st.best) {
      st.best = mean_acc;
      saveTraining(best_path, *model, *head, opt, c, step, st.best);
    }
  };

  model->train();
  head->train();
  const int64_t val_every =
      c.integer("train.val_every") > 0 ? c.integer("train.val_every") : steps_per_epoch;
  const int64_t ckpt_every = c.integer("train.checkpoint_every") > 0
                                 ? c.integer("train.checkpoint_every")
                                 : steps_per_epoch;
  const double clip = c.real("train.clip_grad");
  auto window_start = Clock::now();
  int64_t window_samples = 0, window_steps = 0;
  double window_loss = 0, grad_norm = 0;
  const auto t0 = Clock::now();
  const int64_t first_step = st.step;
  std::string status = "done";
  try {
    while (st.step < total) {
      const int64_t epoch = st.step / steps_per_epoch;
      loader.startEpoch(epoch, (st.step % steps_per_epoch) * accum);
      while (st.step < total && st.step / steps_per_epoch == epoch) {
        while (paused_ && !stop_) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (stop_) break;
        const double lr = learningRate(c, st.step, total, steps_per_epoch);
        for (auto& g : opt.param_groups())
          static_cast<torch::optim::SGDOptions&>(g.options()).lr(lr);
        opt.zero_grad();
        double step_loss = 0;
        int64_t samples = 0;
        for (int64_t k = 0; k < accum; ++k) {
          auto batch = loader.next();
          if (!batch) throw Error("loader ran dry inside an epoch");
          const auto loss = head->forward(model->forward(batch->images), batch->labels) /
                            static_cast<double>(accum);
          const double v = loss.item<double>();
          if (!std::isfinite(v))
            throw Error(
                "step " + std::to_string(st.step + 1) + ": the loss is " +
                (std::isnan(v) ? "NaN" : "infinite") + "; training stopped (lower train.lr?)" +
                (fs::exists(last_path) ? "; the last good checkpoint is " + last_path : ""));
          loss.backward();
          step_loss += v;
          samples += batch->images.size(0);
        }
        grad_norm = clip > 0 ? torch::nn::utils::clip_grad_norm_(params, clip)
                             : torch::nn::utils::clip_grad_norm_(params, 1e30);
        opt.step();
        ++st.step;
        result.losses.push_back(step_loss);
        result.last_loss = step_loss;
        window_loss += step_loss;
        window_samples += samples;
        ++window_steps;
        if (st.step % c.integer("train.log_every") == 0 || st.step == total) {
          const double secs = std::chrono::duration<double>(Clock::now() - window_start).count();
          TrainEvent e;
          e.kind = TrainEvent::Kind::kStep;
          e.step = st.step;
          e.total_steps = total;
          e.epoch = epoch;
          e.loss = window_loss / window_steps;
          e.lr = lr;
          e.samples_per_s = window_samples / std::max(secs, 1e-9);
          e.grad_norm = grad_norm;
          const double per_step =
              std::chrono::duration<double>(Clock::now() - t0).count() / (st.step - first_step);
          e.eta_s = per_step * (total - st.step);
          db.addMetrics(run.id, st.step,
                        {{"loss", e.loss},
                         {"lr", lr},
                         {"samples_per_s", e.samples_per_s},
                         {"grad_norm", grad_norm},
                         {"epoch", static_cast<double>(epoch)}});
          log << "step " << st.step << "/" << total << " epoch " << epoch << " loss " << e.loss
              << " lr " << lr << " samples/s " << e.samples_per_s << " grad_norm " << grad_norm
              << std::endl;
          emit(e);
          window_start = Clock::now();
          window_samples = window_steps = 0;
          window_loss = 0;
        }
        if (st.step % val_every == 0 || st.step == total) validate(st.step);
        if (st.step % ckpt_every == 0 || st.step == total) checkpoint(st.step);
      }
      if (stop_) break;
    }
    if (stop_) {
      status = "stopped";
      if (kept.empty() ||
          kept.back().find("step-" + std::to_string(st.step) + ".ckpt") == std::string::npos)
        checkpoint(st.step);
    }
  } catch (...) {
    db.setStatus(run.id, "failed");
    throw;
  }
  db.setStatus(run.id, status);
  result.status = status;
  result.steps = st.step;
  result.final_checkpoint = last_path;
  TrainEvent done;
  done.kind = TrainEvent::Kind::kDone;
  done.step = st.step;
  done.total_steps = total;
  done.message = last_path;
  emit(done);
  return result;
}

}  // namespace msconv::train
