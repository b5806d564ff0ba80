#include "train/session.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "msconv/atomic_file.h"
#include "msconv/data/dataset.h"
#include "msconv/error.h"
#include "msconv/eval/evaluate.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/batch_norm.h"
#include "msconv/runtime.h"
#include "msconv/train/gradients.h"
#include "msconv/workspace/training_checkpoint.h"
#include "util/torch_error.h"

namespace fs = std::filesystem;

namespace msconv::train {
namespace {

using workspace::RunFile;

MarginSpec marginFrom(const config::RunSettings::Loss& l) {
  MarginSpec m = marginPreset(l.type);
  m.s = l.s;
  if (l.m1 >= 0) m.m1 = l.m1;
  if (l.m2 >= 0) m.m2 = l.m2;
  if (l.m3 >= 0) m.m3 = l.m3;
  return m;
}

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

// BatchNorm's statistics summed over the training ranks.
class CollectiveBatchSync final : public nn::BatchSync {
 public:
  explicit CollectiveBatchSync(std::shared_ptr<Collective> g) : g_(std::move(g)) {}
  void allReduceSum(std::vector<at::Tensor>& tensors) override { g_->allReduceSum(tensors); }

 private:
  std::shared_ptr<Collective> g_;
};

// A configuration as key -> value text, for naming the keys on which two ranks differ.
std::map<std::string, std::string> flatten(const nlohmann::json& j,
                                           const std::string& prefix = "") {
  std::map<std::string, std::string> out;
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      auto sub = flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key());
      out.insert(sub.begin(), sub.end());
    }
  } else {
    out[prefix] = j.dump();
  }
  return out;
}

// An exception's message on one line of train.log.
std::string oneLine(std::string s) {
  for (char& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return s;
}

double wallSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Session::Session(config::Config config, workspace::Workspace ws, std::string name,
                 std::shared_ptr<Collective> group, std::function<void(const TrainEvent&)> emit,
                 std::function<bool()> stop_requested)
    : config_(std::move(config)),
      ws_(std::move(ws)),
      name_(std::move(name)),
      group_(std::move(group)),
      g_(*group_),
      emit_(std::move(emit)),
      stop_requested_(std::move(stop_requested)),
      rank0_(g_.rank() == 0) {}

Session::~Session() = default;

void Session::prepare(const std::string& resume) {
  if (rank0_) db_ = ws_.openStoreToWrite();  // only rank 0 opens (and so writes) the store
  if (!resume.empty()) resolveResume(resume);
  s_ = config_.settings();
  if (g_.worldSize() > 1) agreeOnConfiguration();
  checkDevice();
  scaler_ = std::make_unique<GradScaler>(s_.train.amp);
  // Ranks on one machine share its cores unless told otherwise.
  const int local = g_.localWorldSize();
  setThreads(s_.train.threads > 0 || local <= 1 ? s_.train.threads
                                                : std::max(1, defaultThreadCount() / local));
  {
    // Ranks as threads of one process share LibTorch's default generator: each seeds and draws
    // its initial weights in turn, so that every rank draws what one process would.
    static std::mutex seeding;
    std::lock_guard<std::mutex> lock(seeding);
    torch::manual_seed(s_.seed);
    openData();
    buildModel();
    if (resumed_) restore();
  }
  if (g_.worldSize() > 1) {  // every rank starts from rank 0's backbone, as DDP does
    std::vector<torch::Tensor> state;
    for (auto& p : model_->parameters()) state.push_back(p);
    for (auto& b : model_->buffers()) state.push_back(b);
    g_.broadcast(state);
    grad_sync_ = std::make_unique<GradientSync>(backbone_params_, g_);
  }
  openRun();
  openTelemetry();
  model_->train();
  head_->train();
  t0_ = window_start_ = Clock::now();
  first_step_ = step_;
}

// Every rank trains the same run: the configurations must agree (the thread counts may differ).
// Each rank sees every rank's, so every rank refuses with the same message.
void Session::agreeOnConfiguration() {
  const std::string mine = config_.toJson();
  const auto gathered =
      g_.allGather(torch::from_blob(const_cast<char*>(mine.data()),
                                    {static_cast<int64_t>(mine.size())}, torch::kChar)
                       .clone());
  const auto sizes =
      g_.allGather(torch::full({1}, static_cast<int64_t>(mine.size()), torch::kLong));
  std::vector<std::map<std::string, std::string>> all;
  int64_t at = 0;
  for (int r = 0; r < g_.worldSize(); ++r) {
    const int64_t n = sizes[r].item<int64_t>();
    const auto part = gathered.narrow(0, at, n).contiguous();
    at += n;
    auto flat = flatten(nlohmann::json::parse(
        std::string(static_cast<const char*>(part.data_ptr()), static_cast<size_t>(n))));
    flat.erase("train.threads");
    flat.erase("data.threads");
    all.push_back(std::move(flat));
  }
  for (int r = 1; r < g_.worldSize(); ++r) {
    for (const auto& [k, v] : all[0]) {
      const auto it = all[r].find(k);
      const std::string other = it == all[r].end() ? "(unset)" : it->second;
      if (other != v)
        throw Error("the ranks' configurations differ: " + k + " is " + v + " on rank 0 and " +
                    other + " on rank " + std::to_string(r) +
                    "; every rank must be started with the same configuration");
    }
  }
}

// Resuming: the checkpoint's configuration wins, so the run continues as it was.
void Session::resolveResume(const std::string& resume) {
  std::string ckpt;
  if (fs::is_regular_file(resume)) {
    ckpt = resume;
  } else {
    std::string name = resume;
    if (rank0_) {
      resumed_row_ = db_->findRun(resume);
      if (!resumed_row_)
        throw Error("resume: '" + resume + "' is neither a checkpoint file nor a run in " +
                    db_->path());
      name = resumed_row_->name;
    }
    ckpt = ws_.runFile(name, RunFile::kLastCheckpoint);
    if (!fs::exists(ckpt))
      throw Error("resume: run '" + name + "' has no checkpoint yet (" + ckpt + ")");
  }
  resumed_ = std::make_unique<workspace::TrainingCheckpoint>(ckpt);
  config_ = resumed_->state().config;
}

void Session::checkDevice() {
  const std::string& d = s_.train.device;
  if (d != "cpu" && d != "cuda" && d.rfind("cuda:", 0) != 0)
    throw Error("train.device: '" + d + "' is not cpu, cuda or cuda:N");
  if (d != "cpu" && !cudaAvailable())
    throw Error("train.device: '" + d +
                "' asked for, but this LibTorch was built without CUDA or sees no GPU");
  try {
    device_ = torch::Device(d);
    // Several ranks on one machine: "cuda" is each rank's own GPU, cuda:LOCAL_RANK.
    if (device_.is_cuda() && !device_.has_index() && g_.localWorldSize() > 1)
      device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(g_.localRank()));
  } catch (const c10::Error&) {
    throw Error("train.device: '" + d + "' is not a device");
  }
  if (s_.train.amp && !device_.is_cuda())
    throw Error("train.amp: mixed precision needs train.device=cuda (it is '" + d + "')");
}

void Session::openData() {
  // Generating the synthetic set (the first run of a workspace) takes a while: its progress is an
  // event, and a stop asked for meanwhile ends it (one process only: ranks stop together, at a
  // step, and each generates its own copy of the set).
  const bool alone = g_.worldSize() == 1;
  dataset_ = data::openTrainingSet(ws_.trainingSet(s_, [this, alone](int64_t done, int64_t total) {
    TrainEvent e;
    e.kind = TrainEvent::Kind::kPrepare;
    e.step = done;
    e.total_steps = total;
    e.message = "generating the synthetic set";
    emit_(e);
    return !(alone && stop_requested_ && stop_requested_());
  }));
  for (const auto& v : ws_.validationSets(s_)) val_sets_.push_back(data::readPairsBin(v));
  data::LoaderOptions lo;
  // train.batch_size is the global batch: each rank loads its share of every global batch.
  const int64_t world = g_.worldSize();
  if (s_.train.batch_size % world != 0)
    throw Error("train.batch_size: " + std::to_string(s_.train.batch_size) +
                " samples cannot be split evenly over " + std::to_string(world) +
                " ranks (WORLD_SIZE); use a multiple of " + std::to_string(world));
  lo.batch_size = static_cast<int>(s_.train.batch_size / world);
  lo.threads = s_.data.threads;
  lo.seed = s_.seed;
  lo.flip = s_.data.flip;
  lo.channels_last = s_.data.channels_last;
  lo.rank = g_.rank();
  lo.world = g_.worldSize();
  loader_ = std::make_unique<data::DataLoader>(dataset_, lo);
  const int64_t accum = s_.train.accum;
  const int64_t batches = loader_->batchesPerEpoch();
  if (batches < accum)
    throw Error("data.train: " + std::to_string(dataset_->size()) +
                " images make no full batch of " + std::to_string(lo.batch_size) +
                (accum > 1 ? " x " + std::to_string(accum) : ""));
  steps_per_epoch_ = batches / accum;
  total_ = steps_per_epoch_ * s_.train.epochs;
  if (s_.train.max_steps > 0) total_ = std::min(total_, s_.train.max_steps);
  val_every_ = s_.train.val_every > 0 ? s_.train.val_every : steps_per_epoch_;
  ckpt_every_ = s_.train.checkpoint_every > 0 ? s_.train.checkpoint_every : steps_per_epoch_;
}

void Session::buildModel() {
  // A resumed run rebuilds the backbone its checkpoint describes (a run from before the PReLU
  // slope shape was recorded keeps its per-channel slopes).
  if (resumed_) {
    const auto d = resumed_->model();
    model_ = nn::makeBackbone(d.arch, d.op);
  } else {
    model_ = nn::makeBackbone(s_.model.arch, s_.model.op);
  }
  if (g_.worldSize() > 1 && s_.train.sync_bn)
    nn::syncBatchNorm(*model_, std::make_shared<CollectiveBatchSync>(group_));
  head_ = MarginHead(model_->embeddingDim(), dataset_->numClasses(), marginFrom(s_.loss),
                     s_.loss.sample_rate, group_);
  if (s_.data.channels_last) nn::toChannelsLast(*model_);
  model_->to(device_);
  head_->to(device_);
  for (auto& p : model_->parameters())
    if (p.requires_grad()) backbone_params_.push_back(p);
  params_ = backbone_params_;
  for (auto& p : head_->parameters()) params_.push_back(p);
  opt_ = std::make_unique<torch::optim::SGD>(params_, torch::optim::SGDOptions(s_.train.lr)
                                                          .momentum(s_.train.momentum)
                                                          .weight_decay(s_.train.weight_decay));
}

void Session::restore() {
  workspace::TrainingCheckpoint& a = *resumed_;
  const int64_t world = g_.worldSize();
  if (world > 1)  // the checkpoint holds the whole head: load it whole, keep this shard
    head_->weight.set_data(torch::empty({head_->classes(), model_->embeddingDim()}));
  try {
    model_->load(a.modelWeights());
    head_->load(a.head());
    opt_->load(a.optimizer());
  } catch (const c10::Error& e) {
    throw Error(a.path() +
                ": training state does not fit the configuration: " + util::firstLine(e));
  }
  if (world > 1) {
    const auto [b, e] = head_->shard();
    head_->weight.set_data(head_->weight.data().narrow(0, b, e - b).clone());
    if (auto* ms = momentumOf(*opt_, head_->weight); ms && ms->momentum_buffer().defined())
      ms->momentum_buffer(ms->momentum_buffer().narrow(0, b, e - b).clone());
  }
  const auto& st = a.state();
  if (s_.train.amp && st.has_scaler) scaler_->restore(st.scaler_scale, st.scaler_clean);
  step_ = st.step;
  best_ = st.best;
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(st.rng);
}

// The run: a folder and a row in the store.
void Session::openRun() {
  if (resumed_row_) {
    run_ = *resumed_row_;
    db_->reopen(run_.id);
    db_->truncateMetrics(run_.id, step_);  // the steps after the checkpoint are run again
  } else {
    run_.name = !name_.empty() ? name_ : model_->arch().name + "-" + model_->op().baseName();
    if (db_)
      run_ = db_->createRun(run_.name, config_.toJson(), model_->arch().str(), model_->op().str());
  }
  dir_ = ws_.runDir(run_.name);
  last_path_ = ws_.runFile(run_.name, RunFile::kLastCheckpoint);
  best_path_ = ws_.runFile(run_.name, RunFile::kBestCheckpoint);
  if (rank0_) {
    fs::create_directories(dir_);
    const int stale = removeStaleTemporaries(dir_);  // a killed run's half-written checkpoint
    log_.open(ws_.runFile(run_.name, RunFile::kLog), std::ios::app);
    if (!log_.is_open())
      throw Error(ws_.runFile(run_.name, RunFile::kLog) +
                  ": cannot write: " + std::strerror(errno));
    if (stale > 0)
      log_ << "removed " << stale << " temporary file(s) of a process that died while writing"
           << std::endl;
    checkLog();
    writeFileAtomically(ws_.runFile(run_.name, RunFile::kConfig), config_.toJson() + "\n");
  }
  result_.run_name = run_.name;
  result_.run_dir = dir_;
  TrainEvent e;
  e.kind = TrainEvent::Kind::kStart;
  e.step = step_;
  e.total_steps = total_;
  e.message = run_.name;
  emit_(e);
}

// Per-layer telemetry for msconv-scope (rank 0): a new file, or the resumed run's continued.
void Session::openTelemetry() {
  if (!rank0_ || s_.telemetry_every <= 0) return;
  probe_ = std::make_unique<TelemetryProbe>(*model_, head_.ptr().get(),
                                            static_cast<int>(s_.telemetry_every));
  const std::string path = ws_.runFile(run_.name, RunFile::kTelemetry);
  if (resumed_row_ && fs::exists(path)) {
    try {
      telemetry_ =
          std::make_unique<telemetry::Writer>(telemetry::Writer::append(path, probe_->header()));
    } catch (const Error& e) {
      log_ << "telemetry: " << e.what() << "; starting a new file" << std::endl;
      checkLog();
    }
  }
  if (!telemetry_) telemetry_ = std::make_unique<telemetry::Writer>(path, probe_->header());
}

Session::Agreed Session::agree(bool stop, bool pause) {
  if (g_.worldSize() == 1) return {stop, pause};
  auto flags = torch::tensor({stop ? 1.0 : 0.0, pause ? 1.0 : 0.0});
  g_.allReduceMax(flags);
  return {flags[0].item<double>() > 0, flags[1].item<double>() > 0};
}

void Session::step() {
  const int64_t epoch = step_ / steps_per_epoch_;
  if (epoch != epoch_) {  // a new epoch, or the resumed one from where it stopped
    loader_->startEpoch(epoch, (step_ % steps_per_epoch_) * s_.train.accum);
    epoch_ = epoch;
  }
  const double lr = learningRate(s_.train, step_, total_, steps_per_epoch_);
  for (auto& group : opt_->param_groups())
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
  train::releaseGradients(*opt_);
  double step_loss = 0;
  int64_t samples = 0;
  const int64_t accum = s_.train.accum;
  nn::Tap* tap = probe_ && probe_->due(step_) ? probe_->tap() : nullptr;
  for (int64_t k = 0; k < accum; ++k) {
    auto batch = loader_->next();
    if (!batch) throw Error("data.train: the loader ran dry inside epoch " + std::to_string(epoch));
    const auto images = batch->images.to(device_, /*non_blocking=*/true);
    const auto labels = batch->labels.to(device_, /*non_blocking=*/true);
    torch::Tensor embeddings;
    if (s_.train.amp) {  // half-precision backbone under autocast; the margin head in fp32
      at::autocast::set_enabled(true);
      embeddings = model_->forward(images, k == 0 ? tap : nullptr);
      at::autocast::set_enabled(false);
      at::autocast::clear_cache();
      embeddings = embeddings.to(torch::kFloat);
    } else {
      embeddings = model_->forward(images, k == 0 ? tap : nullptr);
    }
    const auto loss = head_->forward(embeddings, labels) / static_cast<double>(accum);
    if (grad_sync_ && k == accum - 1) grad_sync_->arm();  // the step's gradients are final
    const double v = loss.item<double>();
    if (!std::isfinite(v))
      throw Error("step " + std::to_string(step_ + 1) + ": the loss is " +
                  (std::isnan(v) ? "NaN" : "infinite") + "; training stopped (lower train.lr?)" +
                  (fs::exists(last_path_) ? "; the last good checkpoint is " + last_path_ : ""));
    scaler_->scale(loss).backward();
    step_loss += v;
    samples += batch->images.size(0) * g_.worldSize();
  }
  // The loss is the mean over every rank's samples: backbone gradients add up (summed while the
  // last backward pass ran).
  if (grad_sync_) grad_sync_->finish();
  const bool overflow = scaler_->unscale(params_, &g_);
  if (tap)  // gradients as the step sees them, before clipping
    telemetry_->write(probe_->collect(step_ + 1, wallSeconds(), step_loss));
  clipGradients();
  if (!overflow) opt_->step();  // an overflowing mixed-precision step is skipped
  scaler_->update(overflow);
  ++step_;
  result_.losses.push_back(step_loss);
  window_loss_ += step_loss;
  window_samples_ += samples;
  ++window_steps_;
  if (step_ % s_.train.log_every == 0 || step_ == total_) logStep(epoch, lr);
}

void Session::clipGradients() {
  const double clip = s_.train.clip_grad;
  if (g_.worldSize() == 1) {
    grad_norm_ = torch::nn::utils::clip_grad_norm_(params_, clip > 0 ? clip : 1e30);
    return;
  }
  // Head shards differ per rank: their squared norms add up.
  torch::NoGradGuard no_grad;
  auto sq = torch::zeros({1}, torch::kDouble);
  for (auto& p : head_->parameters())
    if (p.grad().defined()) sq += p.grad().pow(2).sum().to(torch::kDouble).cpu();
  std::vector<torch::Tensor> v{sq};
  g_.allReduceSum(v);
  for (auto& p : backbone_params_)
    if (p.grad().defined()) sq += p.grad().pow(2).sum().to(torch::kDouble).cpu();
  grad_norm_ = std::sqrt(sq.item<double>());
  if (clip > 0 && grad_norm_ > clip)
    for (auto& p : params_)
      if (p.grad().defined()) p.grad().mul_(clip / (grad_norm_ + 1e-6));
}

void Session::logStep(int64_t epoch, double lr) {
  const double secs = std::chrono::duration<double>(Clock::now() - window_start_).count();
  TrainEvent e;
  e.kind = TrainEvent::Kind::kStep;
  e.step = step_;
  e.total_steps = total_;
  e.epoch = epoch;
  e.loss = window_loss_ / window_steps_;
  result_.last_loss = e.loss;
  e.lr = lr;
  e.samples_per_s = window_samples_ / std::max(secs, 1e-9);
  e.grad_norm = grad_norm_;
  const double per_step =
      std::chrono::duration<double>(Clock::now() - t0_).count() / (step_ - first_step_);
  e.eta_s = per_step * (total_ - step_);
  if (db_)
    db_->addMetrics(run_.id, step_,
                    {{"loss", e.loss},
                     {"lr", lr},
                     {"samples_per_s", e.samples_per_s},
                     {"grad_norm", grad_norm_},
                     {"epoch", static_cast<double>(epoch)}});
  log_ << "step " << step_ << "/" << total_ << " epoch " << epoch << " loss " << e.loss << " lr "
       << lr << " samples/s " << e.samples_per_s << " grad_norm " << grad_norm_ << std::endl;
  checkLog();
  emit_(e);
  window_start_ = Clock::now();
  window_samples_ = window_steps_ = 0;
  window_loss_ = 0;
}

void Session::saveTraining(const std::string& path) {
  WholeHead whole(*head_, *opt_, g_);
  if (!rank0_) return;
  torch::serialize::OutputArchive h, o;
  head_->save(h);
  opt_->save(o);
  workspace::TrainingState st;
  st.config = config_;
  st.step = step_;
  st.best = best_;
  st.rng = at::detail::getDefaultCPUGenerator().get_state();
  st.has_scaler = scaler_->enabled();
  st.scaler_scale = scaler_->scaleValue();
  st.scaler_clean = scaler_->cleanSteps();
  workspace::writeTrainingCheckpoint(path, *model_, h, o, st);
}

void Session::checkpoint() {
  const std::string p = ws_.stepCheckpoint(run_.name, step_);
  saveTraining(p);
  checkpointed_step_ = step_;  // on every rank: finish() decides the same everywhere
  if (!rank0_) return;
  // last.ckpt is a second name for the same file (no second write), swapped in atomically;
  // it stays valid when the step file is later pruned.
  fs::remove(last_path_ + ".tmp");
  fs::create_hard_link(p, last_path_ + ".tmp");
  fs::rename(last_path_ + ".tmp", last_path_);
  db_->addArtifact(run_.id, "checkpoint", p, step_);
  kept_.push_back(p);
  while (static_cast<int64_t>(kept_.size()) > s_.train.keep_last) {
    fs::remove(kept_.front());
    db_->removeArtifact(run_.id, kept_.front());
    kept_.erase(kept_.begin());
  }
  TrainEvent e;
  e.kind = TrainEvent::Kind::kCheckpoint;
  e.step = step_;
  e.message = p;
  emit_(e);
  log_ << "checkpoint step " << step_ << " " << p << std::endl;
  checkLog();
}

void Session::validate() {
  TrainEvent e;
  e.kind = TrainEvent::Kind::kValidation;
  e.step = step_;
  double mean_acc = 0;
  // Rank 0 validates; the others only learn whether a best checkpoint is due.
  auto improved = torch::zeros({1});
  std::vector<std::pair<std::string, double>> kv;
  // The sets are decoded once per process, at the first validation.
  if (rank0_ && val_decoded_.size() != val_sets_.size())
    for (const auto& set : val_sets_) val_decoded_.push_back(eval::decodePairImages(set));
  for (size_t v = 0; v < (rank0_ ? val_sets_.size() : 0); ++v) {
    const auto& set = val_sets_[v];
    const auto r = eval::verifyPairs(*model_, set, 64, nullptr, &val_decoded_[v]);
    for (const auto& [name, v] :
         eval::verificationMetrics(fs::path(set.path).filename().string(), r))
      e.metrics[name.str()] = v;
    mean_acc += r.accuracy / val_sets_.size();
  }
  for (const auto& [k, v] : e.metrics) kv.emplace_back(k, v);
  if (!kv.empty() && db_) db_->addMetrics(run_.id, step_, kv);
  result_.last_validation = e.metrics;
  if (rank0_) emit_(e);
  for (const auto& [k, v] : e.metrics) log_ << "step " << step_ << " " << k << " " << v << "\n";
  log_.flush();
  checkLog();
  if (rank0_ && !val_sets_.empty() && mean_acc > best_) improved.fill_(1.0);
  g_.waitForRankZero();  // however long rank 0's validation took
  g_.allReduceMax(improved);
  if (improved.item<double>() > 0) {
    best_ = std::max(best_, mean_acc);
    saveTraining(best_path_);
    // The step best.ckpt holds: comparisons show that validation's metrics under its name.
    if (rank0_ && db_) {
      db_->removeArtifact(run_.id, best_path_);
      db_->addArtifact(run_.id, "best", best_path_, step_);
    }
  }
}

TrainResult Session::finish(store::RunStatus status) {
  if (status == store::RunStatus::kStopped && checkpointed_step_ != step_) checkpoint();
  if (g_.worldSize() > 1 && rank0_) {
    const double total = std::chrono::duration<double>(Clock::now() - t0_).count();
    log_ << "communication: rank 0 blocked " << g_.blockedSeconds() << " s of " << total << " s ("
         << 100 * g_.blockedSeconds() / std::max(total, 1e-9) << " %) over " << g_.worldSize()
         << " ranks" << std::endl;
    checkLog();
  }
  if (db_) db_->setStatus(run_.id, status);
  result_.status = status;
  result_.steps = step_;
  result_.total_steps = total_;
  result_.steps_run = step_ - first_step_;
  if (db_)  // the loss as the store holds it: what `msconv runs list` shows
    if (const auto loss = db_->metrics(run_.id, "loss"); !loss.empty())
      result_.last_loss = loss.back().value;
  result_.final_checkpoint = last_path_;
  TrainEvent done;
  done.kind = TrainEvent::Kind::kDone;
  done.step = step_;
  done.total_steps = total_;
  done.message = last_path_;
  emit_(done);
  return result_;
}

void Session::checkLog() {
  // A stream that failed (a full disk) says so once, naming the file; errno is its cause.
  if (!log_.is_open() || log_.good()) return;
  const int err = errno ? errno : EIO;
  log_.clear();
  throw Error(ws_.runFile(run_.name, RunFile::kLog) + ": cannot write: " + std::strerror(err));
}

void Session::fail(const std::string& message) noexcept {
  if (!hasRun()) return;
  // Called while an error propagates: neither step may replace it (a full disk fails both).
  try {
    if (db_) db_->setStatus(run_.id, store::RunStatus::kFailed);
  } catch (const std::exception&) {  // the store reads "running" until it is writable again
  }
  try {
    log_ << "error: " << oneLine(message) << std::endl;  // what Workspace::runError() reads
    log_.clear();  // a log on a full disk sets failbit; nothing else reads it here
  } catch (const std::exception&) {
  }
}

}  // namespace msconv::train
