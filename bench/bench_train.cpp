// Training-step throughput of the backbones (forward, backward and an SGD step at 112 x 112),
// the number the CPU presets are sized by: msnet-tiny and iresnet-tiny must reach 150 samples/s
// at batch 64 on a 2-core machine.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "bench_util.h"
#include "msconv/nn/backbone.h"
#include "msconv/runtime.h"
#include "msconv/train/gradients.h"
#include "msconv/train/telemetry_probe.h"

namespace {

// telemetry_every > 0: the step also feeds msconv-scope's per-layer telemetry every N steps
// (a tap on the forward, statistics after the backward), as the trainer does.
// One training step's parts: the backbone in training mode, a softmax head over 1,000
// identities standing in for the margin head (same matrix sizes), SGD, a random batch.
struct StepSetup {
  msconv::nn::Backbone model;
  torch::nn::Linear head{nullptr};
  std::unique_ptr<torch::optim::SGD> opt;
  torch::Tensor x, y;

  StepSetup(const std::string& arch, const std::string& op, int batch, bool channels_last) {
    msconv::setThreads(0);
    msconv::keepFreedMemory();
    torch::manual_seed(0);
    model = msconv::nn::makeBackbone(arch, op);
    model->train();
    head = torch::nn::Linear(model->embeddingDim(), 1000);
    std::vector<torch::Tensor> params = model->parameters();
    for (auto& p : head->parameters()) params.push_back(p);
    opt = std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(0.02).momentum(0.9).weight_decay(5e-4));
    x = torch::randn({batch, 3, 112, 112});
    if (channels_last) {
      msconv::nn::toChannelsLast(*model);
      x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    }
    y = torch::randint(0, 1000, {batch}, torch::kLong);
  }
};

void trainStep(benchmark::State& state, const std::string& arch, const std::string& op, int batch,
               bool channels_last, int telemetry_every = 0) {
  StepSetup setup(arch, op, batch, channels_last);
  auto& model = setup.model;
  auto& head = setup.head;
  auto& opt = *setup.opt;
  const auto& x = setup.x;
  const auto& y = setup.y;
  msconv::train::TelemetryProbe probe(*model, head.ptr().get(), telemetry_every);
  int64_t n = 0;
  double sink = 0, collect_s = 0;
  auto step = [&] {
    msconv::train::releaseGradients(opt);
    msconv::nn::Tap* tap = probe.due(n) ? probe.tap() : nullptr;
    auto loss = torch::nn::functional::cross_entropy(head->forward(model->forward(x, tap)), y);
    loss.backward();
    if (tap) {
      const auto c0 = std::chrono::steady_clock::now();
      sink += probe.collect(n + 1, 0.0, loss.item<double>()).grad_norms.size();
      collect_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    }
    opt.step();
    ++n;
  };
  step();  // warm-up: oneDNN primitive creation, allocator
  collect_s = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) step();
  if (telemetry_every > 0)  // the statistics' own time, as a share of the training time
    state.counters["telemetry_pct"] =
        100.0 * collect_s /
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["samples_per_s"] = benchmark::Counter(
      static_cast<double>(batch) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["threads"] = msconv::threadCount();
  benchmark::DoNotOptimize(sink);
}

// Where the training step's time goes, op by op: LibTorch's profiler (the same RecordFunction
// events PyTorch's profiler reports for the peer, bench/peers/train_step.py --profile) over a few
// steps; each op's self time (its time less that of the ops it calls), per step, as counters
// "self_ms/NAME" (ops with at least 0.5 % of the step), plus "step_ms". Our hand-written kernels
// appear under their own names (msconv::...).
void stepProfile(benchmark::State& state, const std::string& arch, const std::string& op,
                 int batch) {
  StepSetup setup(arch, op, batch, /*channels_last=*/false);
  auto step = [&] {
    msconv::train::releaseGradients(*setup.opt);
    torch::nn::functional::cross_entropy(setup.head->forward(setup.model->forward(setup.x)),
                                         setup.y)
        .backward();
    setup.opt->step();
  };
  step();  // warm-up
  msconv::bench::profileIterations(state, "step", step);
}

}  // namespace

BENCHMARK_CAPTURE(stepProfile, msnet50_msconv_official_b16, "msnet50", "msconv-official", 16)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

#define TRAIN_BENCH(name, arch, op, batch, cl)            \
  BENCHMARK_CAPTURE(trainStep, name, arch, op, batch, cl) \
      ->Unit(benchmark::kMillisecond)                     \
      ->UseRealTime()                                     \
      ->MinTime(2.0)

TRAIN_BENCH(msnet_tiny_msconv_official_b64, "msnet-tiny", "msconv-official", 64, false);
BENCHMARK_CAPTURE(trainStep, msnet_tiny_msconv_official_b64_telemetry10, "msnet-tiny",
                  "msconv-official", 64, false, 10)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(4.0);
TRAIN_BENCH(msnet_tiny_msconv_official_b64_nhwc, "msnet-tiny", "msconv-official", 64, true);
TRAIN_BENCH(msnet_tiny_msconv_b64, "msnet-tiny", "msconv", 64, false);
TRAIN_BENCH(msnet_tiny_msconv_b64_nhwc, "msnet-tiny", "msconv", 64, true);
TRAIN_BENCH(msnet_tiny_skconv_b64, "msnet-tiny", "skconv", 64, false);
TRAIN_BENCH(msnet_tiny_skconv_b64_nhwc, "msnet-tiny", "skconv", 64, true);
TRAIN_BENCH(msnet_tiny_scconv_b64, "msnet-tiny", "scconv", 64, false);
TRAIN_BENCH(msnet_tiny_scconv_b64_nhwc, "msnet-tiny", "scconv", 64, true);
TRAIN_BENCH(iresnet_tiny_b64, "iresnet-tiny", "conv", 64, false);
TRAIN_BENCH(iresnet_tiny_b64_nhwc, "iresnet-tiny", "conv", 64, true);
TRAIN_BENCH(iresnet_tiny_msconv_official_b64, "iresnet-tiny", "msconv-official", 64, false);
TRAIN_BENCH(iresnet_tiny_msconv_official_b64_nhwc, "iresnet-tiny", "msconv-official", 64, true);

// The paper's backbone at the batch the PyTorch peer runs (fp32, CPU): the 1.2x comparison.
BENCHMARK_CAPTURE(trainStep, msnet50_msconv_official_b16, "msnet50", "msconv-official", 16, false)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(10.0);
BENCHMARK_CAPTURE(trainStep, msnet50_msconv_official_b16_nhwc, "msnet50", "msconv-official", 16,
                  true)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(10.0);
