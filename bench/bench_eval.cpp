// Evaluation at IJB-C scale: 23,124 templates of 512-d features, 15,658,489 template pairs
// (19,557 genuine), scored and reduced to the exact ROC, TAR@FAR and AUC. Synthetic embeddings;
// the pair list is drawn at random, which is harder on caches than IJB-C's own. Reports the
// seconds of one full scoring pass and the process's peak resident memory (run it in a process
// of its own: ./lab bench does).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <random>
#include <string>

#include "bench_util.h"
#include "msconv/eval/failures.h"
#include "msconv/eval/ijb.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/complexity.h"
#include "msconv/nn/inference.h"
#include "msconv/nn/inference_conv.h"
#include "msconv/runtime.h"

namespace {

void ijbcScale(benchmark::State& state) {
  msconv::setThreads(0);
  const int64_t templates = 23124, dim = 512, pairs = 15658489, genuine = 19557;
  torch::manual_seed(0);
  msconv::eval::Templates t;
  // Genuine pairs share an identity vector; ids spaced like IJB-C's (1 .. ~180k).
  const auto identity = torch::randn({templates / 4, dim});
  const auto owner = torch::randint(0, templates / 4, {templates}, torch::kLong);
  t.features = torch::nn::functional::normalize(
      identity.index_select(0, owner) + 1.2 * torch::randn({templates, dim}),
      torch::nn::functional::NormalizeFuncOptions().dim(1));
  for (int64_t i = 0; i < templates; ++i) t.ids.push_back(1 + 7 * i);
  msconv::data::IjbSet set;
  set.name = "ijbc-synthetic";
  set.pairs.resize(pairs);
  const auto* own = owner.data_ptr<int64_t>();
  uint64_t x = 88172645463325252ull;
  auto next = [&] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  };
  std::vector<std::vector<int64_t>> members(templates / 4);
  for (int64_t i = 0; i < templates; ++i) members[own[i]].push_back(i);
  for (int64_t i = 0; i < pairs; ++i) {
    auto& p = set.pairs[i];
    if (i < genuine) {
      int64_t a = 0, b = 0;
      do {
        const auto& m = members[next() % members.size()];
        if (m.size() < 2) continue;
        a = m[next() % m.size()], b = m[next() % m.size()];
      } while (a == b);
      p = {t.ids[a], t.ids[b], 1};
    } else {
      p = {t.ids[next() % templates], t.ids[next() % templates], 0};
    }
  }
  double seconds = 0, tar4 = 0;
  for (auto _ : state) {
    const auto r = msconv::eval::scoreIjb(set, t);
    seconds = r.score_seconds;
    tar4 = r.roc.tar_at_far[2].second;
    benchmark::DoNotOptimize(r.roc.auc);
  }
  state.counters["seconds"] = seconds;
  state.counters["peak_rss_mib"] = msconv::bench::peakRssMiB();
  state.counters["tar_at_far_1e-4"] = tar4;
}

// The failure browser at IJB-C scale, after scoring: 15,658,489 template-pair scores (19,557
// genuine, spread at random among the impostors; genuine ~ N(0.45, 0.15), impostor ~ N(0, 0.08),
// cosine-like), the top 100 false accepts and false rejects at FAR 1e-4 of one model, and the
// disagreements of two (listFailures: the threshold by radix selection, the decisions, a partial
// selection). Target: under 1 s for one model.
void ijbcFailures(benchmark::State& state) {
  msconv::setThreads(0);
  const int64_t pairs = 15658489, genuine = 19557;
  msconv::eval::PairScores a, b;
  a.set = b.set = "ijbc-synthetic";
  a.is_ijb = b.is_ijb = true;
  a.checkpoint = "a", b.checkpoint = "b";
  a.label.assign(pairs, 0);
  std::mt19937_64 rng(7);
  for (int64_t g = 0; g < genuine;) {
    auto& l = a.label[rng() % pairs];
    if (!l) l = 1, ++g;
  }
  b.label = a.label;
  std::normal_distribution<float> nd;
  a.score.resize(pairs), b.score.resize(pairs);
  for (int64_t i = 0; i < pairs; ++i) {
    const float mu = a.label[i] ? 0.45f : 0.0f, sd = a.label[i] ? 0.15f : 0.08f;
    a.score[i] = mu + sd * nd(rng);
    b.score[i] = 0.7f * a.score[i] + 0.3f * (mu + sd * nd(rng));
  }
  const msconv::eval::OperatingPoint op{false, 1e-4};
  double one = 0, two = 0;
  size_t rows = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    const auto f1 = msconv::eval::listFailures({&a}, op, 100);
    auto t1 = std::chrono::steady_clock::now();
    const auto f2 = msconv::eval::listFailures({&a, &b}, op, 100);
    auto t2 = std::chrono::steady_clock::now();
    one = std::chrono::duration<double>(t1 - t0).count();
    two = std::chrono::duration<double>(t2 - t1).count();
    rows = f1.rows.size() + f2.rows.size();
    benchmark::DoNotOptimize(rows);
  }
  state.counters["seconds"] = one;
  state.counters["two_models_seconds"] = two;
  state.counters["rows"] = static_cast<double>(rows);
}

// Embedding throughput (forward only, batch of 112 x 112 faces, images/s) of a backbone as
// msconv eval runs it: its inference form (BatchNorm folded, channels-last, no autograd, each
// folded convolution fused with its epilogue), or for comparison the same form with the fused
// convolutions off (LibTorch's convolution, then the add and the activation), or the eval-mode
// training graph without gradients, NCHW or channels-last. bench/peers/embed.py is the PyTorch
// peer (./lab bench prints the ratios).
enum class EmbedPath { kInference, kInferenceUnfused, kGraph, kGraphChannelsLast };

void embedThroughput(benchmark::State& state, const std::string& arch, const std::string& op,
                     int batch, EmbedPath path) {
  msconv::setThreads(0);
  msconv::keepFreedMemory();
  torch::manual_seed(0);
  msconv::nn::Backbone model = msconv::nn::makeBackbone(arch, op);
  model->eval();
  state.counters["gmacs_per_image"] = msconv::nn::measureComplexity(*model, 112, 1).macs / 1e9;
  torch::Tensor x = torch::randn({batch, 3, 112, 112});
  struct Restore {
    ~Restore() { msconv::nn::setInferenceConvFusion(true); }
  } restore;
  msconv::nn::setInferenceConvFusion(path != EmbedPath::kInferenceUnfused);
  if (path == EmbedPath::kInference || path == EmbedPath::kInferenceUnfused) {
    model = msconv::nn::inferenceCopy(model);
    x = msconv::nn::inferenceInput(*model, x);
  } else if (path == EmbedPath::kGraphChannelsLast) {
    msconv::nn::toChannelsLast(*model);
    x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  auto embed = [&] {
    if (path == EmbedPath::kInference || path == EmbedPath::kInferenceUnfused) {
      c10::InferenceMode guard;
      return model->forward(x);
    }
    torch::NoGradGuard no_grad;
    return model->forward(x);
  };
  benchmark::DoNotOptimize(embed());  // warm-up: oneDNN primitives, allocator
  for (auto _ : state) benchmark::DoNotOptimize(embed());
  state.counters["images_per_s"] = benchmark::Counter(
      static_cast<double>(batch) * state.iterations(), benchmark::Counter::kIsRate);
}

}  // namespace

// Where an embedding batch's time goes in the inference form, op by op (LibTorch's profiler, as
// stepProfile does for the training step; bench/peers/embed.py --profile is the peer's, run
// channels-last): counters "batch_ms" and "self_ms/NAME".
void embedProfile(benchmark::State& state, const std::string& arch, const std::string& op,
                  int batch) {
  msconv::setThreads(0);
  msconv::keepFreedMemory();
  torch::manual_seed(0);
  msconv::nn::Backbone model = msconv::nn::makeBackbone(arch, op);
  model->eval();
  model = msconv::nn::inferenceCopy(model);
  const torch::Tensor x = msconv::nn::inferenceInput(*model, torch::randn({batch, 3, 112, 112}));
  auto embed = [&] {
    c10::InferenceMode guard;
    benchmark::DoNotOptimize(model->forward(x));
  };
  embed();  // warm-up
  msconv::bench::profileIterations(state, "batch", embed);
}

#define EMBED_BENCH(name, arch, op)                                                         \
  BENCHMARK_CAPTURE(embedThroughput, name##_inference, arch, op, 64, EmbedPath::kInference) \
      ->Unit(benchmark::kMillisecond)                                                       \
      ->UseRealTime()                                                                       \
      ->MinTime(4.0);                                                                       \
  BENCHMARK_CAPTURE(embedThroughput, name##_inference_unfused, arch, op, 64,                \
                    EmbedPath::kInferenceUnfused)                                           \
      ->Unit(benchmark::kMillisecond)                                                       \
      ->UseRealTime()                                                                       \
      ->MinTime(4.0);                                                                       \
  BENCHMARK_CAPTURE(embedThroughput, name##_graph, arch, op, 64, EmbedPath::kGraph)         \
      ->Unit(benchmark::kMillisecond)                                                       \
      ->UseRealTime()                                                                       \
      ->MinTime(4.0);                                                                       \
  BENCHMARK_CAPTURE(embedThroughput, name##_graph_nhwc, arch, op, 64,                       \
                    EmbedPath::kGraphChannelsLast)                                          \
      ->Unit(benchmark::kMillisecond)                                                       \
      ->UseRealTime()                                                                       \
      ->MinTime(4.0)

EMBED_BENCH(msnet26, "msnet26", "msconv-official");
EMBED_BENCH(msnet50, "msnet50", "msconv-official");
EMBED_BENCH(sknet50, "msnet50", "skconv");

BENCHMARK_CAPTURE(embedProfile, msnet50_inference, "msnet50", "msconv-official", 64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

BENCHMARK(ijbcFailures)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(ijbcScale)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
