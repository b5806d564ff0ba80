#include "msconv/train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
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
#include "msconv/train/grad_scaler.h"
#include "msconv/train/margin.h"
#include "msconv/train/telemetry_probe.h"
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

}  // namespace

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

namespace {

struct State {
  int64_t step = 0;
  double best = -1;
};

torch::optim::SGDParamState* momentumOf(torch::optim::SGD& opt, const torch::Tensor& p) {
  auto& states = opt.state();
  const auto it = states.find(c10::guts::to_string(p.unsafeGetTensorImpl()));
  return it == states.end() ? nullptr : static_cast<torch::optim::SGDParamState*>(it->second.get());
}

// With a class-sharded head, the weight and its momentum are swapped for whole ones gathered
// from every rank while a checkpoint is written, so checkpoints look the same for any world size.
class WholeHead {
 public:
  WholeHead(MarginHeadImpl& head, torch::optim::SGD& opt, Collective& g) : head_(head) {
    if (g.worldSize() == 1) return;
    state_ = momentumOf(opt, head.weight);
    shard_w_ = head.weight.data();
    head.weight.set_data(g.allGather(shard_w_));
    if (state_ && state_->momentum_buffer().defined()) {
      shard_m_ = state_->momentum_buffer();
      state_->momentum_buffer(g.allGather(shard_m_));
    }
  }
  ~WholeHead() {
    if (!shard_w_.defined()) return;
    head_.weight.set_data(shard_w_);
    if (shard_m_.defined()) state_->momentum_buffer(shard_m_);
  }

 private:
  MarginHeadImpl& head_;
  torch::optim::SGDParamState* state_ = nullptr;
  torch::Tensor shard_w_, shard_m_;
};

void saveTraining(const std::string& path, nn::BackboneImpl& model, MarginHeadImpl& head,
                  torch::optim::SGD& opt, const Config& c, int64_t step, double best,
                  const GradScaler& scaler, Collective& g) {
  WholeHead whole(head, opt, g);
  if (g.rank() != 0) return;
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
  if (scaler.enabled()) {
    a.write("scaler_scale", c10::IValue(scaler.scaleValue()));
    a.write("scaler_clean", c10::IValue(scaler.cleanSteps()));
  }
  model::saveArchiveAtomically(a, path);
}

// An exception's message on one line of train.log.
std::string oneLine(std::string s) {
  for (char& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return s;
}

}  // namespace

std::string runDir(const std::string& workspace, const std::string& run) {
  return (fs::path(workspace) / "runs" / run).string();
}

std::string runCheckpoint(const std::string& workspace, const std::string& run) {
  const fs::path dir = runDir(workspace, run);
  for (const char* name : {"best.ckpt", "last.ckpt"})
    if (fs::exists(dir / name)) return (dir / name).string();
  return {};
}

std::string runError(const std::string& workspace, const std::string& run) {
  std::ifstream in(fs::path(runDir(workspace, run)) / "train.log");
  std::string line, last;
  while (std::getline(in, line))
    if (line.rfind("error: ", 0) == 0) last = line.substr(7);
  return last;
}

std::string workspaceOfCheckpoint(const std::string& ckpt) {
  const fs::path runs = fs::absolute(ckpt).parent_path().parent_path();
  return runs.filename() == "runs" && fs::exists(runs.parent_path() / "runs.sqlite")
             ? runs.parent_path().string()
             : "";
}

namespace {

// The training configuration a checkpoint carries (nullopt for a model-only checkpoint).
std::optional<Config> checkpointConfig(const std::string& ckpt) {
  torch::serialize::InputArchive a;
  model::openCheckpoint(ckpt, a);
  c10::IValue cfg;
  if (!a.try_read("config", cfg) || !cfg.isString()) return std::nullopt;
  return Config::fromJson(cfg.toStringRef(), ckpt);
}

// A data.train / data.val entry with "synthetic" resolved in the checkpoint's workspace.
std::string resolveSet(const std::string& ckpt, const Config& c, const std::string& v,
                       const std::string& suffix) {
  if (v != "synthetic") return v;
  const std::string ws = workspaceOfCheckpoint(ckpt);
  if (ws.empty())
    throw Error(ckpt +
                ": trained on the workspace's synthetic set, but the checkpoint is not inside "
                "a workspace; name the data");
  return syntheticSet(c, ws) + suffix;
}

}  // namespace

std::vector<std::string> checkpointValidationSets(const std::string& ckpt) {
  std::vector<std::string> out;
  const auto c = checkpointConfig(ckpt);
  if (!c) return out;
  for (const auto& v : c->list("data.val")) out.push_back(resolveSet(ckpt, *c, v, "/val.bin"));
  return out;
}

std::string checkpointTrainingSet(const std::string& ckpt) {
  const auto c = checkpointConfig(ckpt);
  return c ? resolveSet(ckpt, *c, c->text("data.train"), "") : std::string();
}

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

Trainer::Trainer(Config config, std::string workspace, std::string name,
                 std::shared_ptr<Collective> group)
    : config_(std::move(config)),
      workspace_(std::move(workspace)),
      name_(std::move(name)),
      group_(group ? std::move(group) : singleProcess()) {}

void Trainer::emit(const TrainEvent& e) {
  for (auto& o : observers_) o(e);
}

TrainResult Trainer::run(const std::string& resume) {
  Collective& g = *group_;
  const bool rank0 = g.rank() == 0;
  // Only rank 0 opens (and so writes) the store.
  std::unique_ptr<store::RunStore> db_owner;
  if (rank0) db_owner = std::make_unique<store::RunStore>(workspace_);
  // Resuming: the checkpoint's configuration wins, so the run continues as it was.
  std::string resume_ckpt;
  torch::serialize::InputArchive resumed;  // read once: configuration now, state further down
  std::optional<store::RunRow> row;
  if (!resume.empty()) {
    if (fs::is_regular_file(resume)) {
      resume_ckpt = resume;
    } else {
      std::string name = resume;
      if (rank0) {
        row = db_owner->findRun(resume);
        if (!row)
          throw Error("--resume: '" + resume + "' is neither a checkpoint file nor a run in " +
                      db_owner->path());
        name = row->name;
      }
      resume_ckpt = (fs::path(runDir(workspace_, name)) / "last.ckpt").string();
      if (!fs::exists(resume_ckpt))
        throw Error("--resume: run '" + row->name + "' has no checkpoint yet (" + resume_ckpt +
                    ")");
    }
    model::openCheckpoint(resume_ckpt, resumed);
    c10::IValue cfg;
    if (!resumed.try_read("config", cfg) || !cfg.isString())
      throw Error(resume_ckpt +
                  ": a model checkpoint without training state; cannot resume from it");
    config_ = Config::fromJson(cfg.toStringRef(), resume_ckpt);
  }
  const Config& c = config_;
  const torch::Device device = [&] {
    const std::string& d = c.text("train.device");
    if (d != "cpu" && d != "cuda" && d.rfind("cuda:", 0) != 0)
      throw Error("train.device: '" + d + "' is not cpu, cuda or cuda:N");
    if (d != "cpu" && !cudaAvailable())
      throw Error("train.device: '" + d +
                  "' asked for, but this LibTorch was built without CUDA or sees no GPU");
    try {
      return torch::Device(d);
    } catch (const c10::Error&) {
      throw Error("train.device: '" + d + "' is not a device");
    }
  }();
  const bool amp = c.flag("train.amp");
  if (amp && !device.is_cuda())
    throw Error("train.amp: mixed precision needs train.device=cuda (it is '" +
                c.text("train.device") + "')");
  GradScaler scaler(amp);
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
  lo.rank = g.rank();
  lo.world = g.worldSize();
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
  // A resumed run rebuilds the backbone its checkpoint describes (a run from before the PReLU
  // slope shape was recorded keeps its per-channel slopes).
  auto model =
      resume_ckpt.empty() ? nn::makeBackbone(c.text("model.arch"), c.text("model.op")) : [&] {
        const auto d = model::describeModel(resumed, resume_ckpt);
        return nn::makeBackbone(d.arch, d.op);
      }();
  MarginHead head(model->embeddingDim(), dataset->numClasses(), marginFrom(c),
                  c.real("loss.sample_rate"), group_);
  if (lo.channels_last) nn::toChannelsLast(*model);
  model->to(device);
  head->to(device);
  std::vector<torch::Tensor> params, backbone_params;
  for (auto& p : model->parameters())
    if (p.requires_grad()) backbone_params.push_back(p);
  params = backbone_params;
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
    const int64_t world = g.worldSize();
    if (world > 1)  // the checkpoint holds the whole head: load it whole, keep this shard
      head->weight.set_data(torch::empty({head->classes(), model->embeddingDim()}));
    try {
      model->load(m);
      head->load(h);
      opt.load(o);
    } catch (const c10::Error& e) {
      throw Error(resume_ckpt +
                  ": training state does not fit the configuration: " + util::firstLine(e));
    }
    if (world > 1) {
      const auto [b, e] = head->shard();
      head->weight.set_data(head->weight.data().narrow(0, b, e - b).clone());
      if (auto* ms = momentumOf(opt, head->weight); ms && ms->momentum_buffer().defined())
        ms->momentum_buffer(ms->momentum_buffer().narrow(0, b, e - b).clone());
    }
    c10::IValue scale, clean;
    if (amp && a.try_read("scaler_scale", scale) && a.try_read("scaler_clean", clean))
      scaler.restore(scale.toDouble(), clean.toInt());
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

  if (g.worldSize() > 1) {  // every rank starts from rank 0's backbone, as DDP does
    std::vector<torch::Tensor> state;
    for (auto& p : model->parameters()) state.push_back(p);
    for (auto& b : model->buffers()) state.push_back(b);
    g.broadcast(state);
  }

  // The run: a folder and a row in the store.
  store::RunStore* db = db_owner.get();  // null on ranks other than 0
  store::RunRow run;
  if (row) {
    run = *row;
    db->reopen(run.id);
    db->truncateMetrics(run.id, st.step);  // the steps after the checkpoint are run again
  } else {
    run.name = !name_.empty() ? name_ : model->arch().name + "-" + model->op().baseName();
    if (db) run = db->createRun(run.name, c.toJson(), model->arch().str(), model->op().str());
  }
  const fs::path dir = runDir(workspace_, run.name);
  std::ofstream log;  // stays closed (writes nothing) on ranks other than 0
  if (rank0) {
    fs::create_directories(dir);
    log.open(dir / "train.log", std::ios::app);
    std::ofstream(dir / "config.json") << c.toJson() << "\n";
  }
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

  // Per-layer telemetry for msconv-scope (rank 0): a new file, or the resumed run's continued.
  std::unique_ptr<TelemetryProbe> probe;
  std::unique_ptr<telemetry::Writer> telemetry_out;
  if (rank0 && c.integer("telemetry.every") > 0) {
    probe = std::make_unique<TelemetryProbe>(*model, head.ptr().get(),
                                             static_cast<int>(c.integer("telemetry.every")));
    const std::string tpath = (dir / "telemetry.bin").string();
    if (row && fs::exists(tpath)) {
      try {
        telemetry_out =
            std::make_unique<telemetry::Writer>(telemetry::Writer::append(tpath, probe->header()));
      } catch (const Error& e) {
        log << "telemetry: " << e.what() << "; starting a new file" << std::endl;
      }
    }
    if (!telemetry_out) telemetry_out = std::make_unique<telemetry::Writer>(tpath, probe->header());
  }

  std::vector<std::string> kept;  // step checkpoints, oldest first
  const std::string last_path = (dir / "last.ckpt").string(),
                    best_path = (dir / "best.ckpt").string();
  auto checkpoint = [&](int64_t step) {
    const std::string p = (dir / ("step-" + std::to_string(step) + ".ckpt")).string();
    saveTraining(p, *model, *head, opt, c, step, st.best, scaler, g);
    if (!rank0) return;
    // last.ckpt is a second name for the same file (no second write), swapped in atomically;
    // it stays valid when the step file is later pruned.
    fs::remove(last_path + ".tmp");
    fs::create_hard_link(p, last_path + ".tmp");
    fs::rename(last_path + ".tmp", last_path);
    db->addArtifact(run.id, "checkpoint", p, step);
    kept.push_back(p);
    while (static_cast<int64_t>(kept.size()) > c.integer("train.keep_last")) {
      fs::remove(kept.front());
      db->removeArtifact(run.id, kept.front());
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
    // Rank 0 validates; the others only learn whether a best checkpoint is due.
    auto improved = torch::zeros({1});
    for (const auto& set : (rank0 ? val_sets : std::vector<data::PairSet>{})) {
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
    if (!kv.empty() && db) db->addMetrics(run.id, step, kv);
    result.last_validation = e.metrics;
    if (rank0) emit(e);
    for (const auto& [k, v] : e.metrics) log << "step " << step << " " << k << " " << v << "\n";
    log.flush();
    if (rank0 && !val_sets.empty() && mean_acc > st.best) improved.fill_(1.0);
    g.allReduceMax(improved);
    if (improved.item<double>() > 0) {
      st.best = std::max(st.best, mean_acc);
      saveTraining(best_path, *model, *head, opt, c, step, st.best, scaler, g);
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
        if (g.worldSize() > 1) {  // a stop on any rank stops them all, at the same step
          auto flag = torch::full({1}, stop_ ? 1.0 : 0.0);
          g.allReduceMax(flag);
          if (flag.item<double>() > 0) stop_ = true;
        }
        if (stop_) break;
        const double lr = learningRate(c, st.step, total, steps_per_epoch);
        for (auto& group : opt.param_groups())
          static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
        opt.zero_grad();
        double step_loss = 0;
        int64_t samples = 0;
        nn::Tap* tap = probe && probe->due(st.step) ? probe->tap() : nullptr;
        for (int64_t k = 0; k < accum; ++k) {
          auto batch = loader.next();
          if (!batch) throw Error("loader ran dry inside an epoch");
          const auto images = batch->images.to(device, /*non_blocking=*/true);
          const auto labels = batch->labels.to(device, /*non_blocking=*/true);
          torch::Tensor embeddings;
          if (amp) {  // half-precision backbone under autocast; the margin head in fp32
            at::autocast::set_enabled(true);
            embeddings = model->forward(images, k == 0 ? tap : nullptr);
            at::autocast::set_enabled(false);
            at::autocast::clear_cache();
            embeddings = embeddings.to(torch::kFloat);
          } else {
            embeddings = model->forward(images, k == 0 ? tap : nullptr);
          }
          const auto loss = head->forward(embeddings, labels) / static_cast<double>(accum);
          const double v = loss.item<double>();
          if (!std::isfinite(v))
            throw Error(
                "step " + std::to_string(st.step + 1) + ": the loss is " +
                (std::isnan(v) ? "NaN" : "infinite") + "; training stopped (lower train.lr?)" +
                (fs::exists(last_path) ? "; the last good checkpoint is " + last_path : ""));
          scaler.scale(loss).backward();
          step_loss += v;
          samples += batch->images.size(0);
        }
        if (g.worldSize() > 1) {
          // The loss is the mean over every rank's samples: backbone gradients add up.
          std::vector<torch::Tensor> grads;
          for (auto& p : backbone_params)
            if (p.grad().defined()) grads.push_back(p.grad());
          g.allReduceSum(grads);
        }
        const bool overflow = scaler.unscale(params, &g);
        if (tap)  // gradients as the step sees them, before clipping
          telemetry_out->write(probe->collect(
              st.step + 1,
              std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                  .count(),
              step_loss));
        if (g.worldSize() == 1) {
          grad_norm = torch::nn::utils::clip_grad_norm_(params, clip > 0 ? clip : 1e30);
        } else {  // head shards differ per rank: their squared norms add up
          torch::NoGradGuard no_grad;
          auto sq = torch::zeros({1}, torch::kDouble);
          for (auto& p : head->parameters())
            if (p.grad().defined()) sq += p.grad().pow(2).sum().to(torch::kDouble).cpu();
          std::vector<torch::Tensor> v{sq};
          g.allReduceSum(v);
          for (auto& p : backbone_params)
            if (p.grad().defined()) sq += p.grad().pow(2).sum().to(torch::kDouble).cpu();
          grad_norm = std::sqrt(sq.item<double>());
          if (clip > 0 && grad_norm > clip)
            for (auto& p : params)
              if (p.grad().defined()) p.grad().mul_(clip / (grad_norm + 1e-6));
        }
        if (!overflow) opt.step();  // an overflowing mixed-precision step is skipped
        scaler.update(overflow);
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
          if (db)
            db->addMetrics(run.id, st.step,
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
  } catch (const std::exception& e) {
    if (db) db->setStatus(run.id, "failed");
    log << "error: " << oneLine(e.what()) << std::endl;  // what runError() reads back
    throw;
  } catch (...) {
    if (db) db->setStatus(run.id, "failed");
    throw;
  }
  if (db) db->setStatus(run.id, status);
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
