// The fused MSConv stage against the composed one, and the whole msconv-official operator, at the
// four MSNet-50 stage shapes (batch 16, 112 x 112 input), forward + backward; the machine's
// convolution peak (for the training step's model FLOP utilisation); the MSNet-50 training
// step's peak memory (run in a process of its own by ./lab bench).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <fstream>

#include "bench_util.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/complexity.h"
#include "msconv/nn/fusion.h"
#include "msconv/nn/layers.h"
#include "msconv/nn/operators.h"
#include "msconv/nn/spec.h"
#include "msconv/nn/tap.h"
#include "msconv/runtime.h"

namespace {

using msconv::nn::GateFn;

// C, H, W at the operator of the second unit of each MSNet-50 stage (stride 1).
std::array<int64_t, 3> stageShape(int stage) {
  static const auto shapes = [] {
    auto model = msconv::nn::makeBackbone("msnet50", "msconv-official");
    model->eval();
    torch::NoGradGuard no_grad;
    msconv::nn::Tap tap;
    model->forward(torch::randn({1, 3, 112, 112}), &tap);
    std::vector<std::array<int64_t, 3>> out;
    for (int s = 1; s <= 4; ++s) {
      const auto& u1 = tap.get("stage" + std::to_string(s) + ".1.op", "U1");
      out.push_back({u1.size(1), u1.size(2), u1.size(3)});
    }
    return out;
  }();
  return shapes[stage - 1];
}

// kind 0: fused stage (pooling and mix kernels, the gate network as one node); 1: composed stage
// (tensor operations, the gate network's modules one by one, as MSCONV_FUSED=0 runs them); 2 and
// 3: the gate network alone (forward + backward on the N x C x 1 x 1 pooled tensor), composed and
// fused. The gate network is msconv-official's own (1x1 conv + BN + PReLU, reduce and two heads),
// in training mode.
void fusionStage(benchmark::State& state, int kind) {
  const bool fused = kind == 0 || kind == 3;
  msconv::setThreads(0);
  msconv::keepFreedMemory();
  const auto [C, H, W] = stageShape(static_cast<int>(state.range(0)));
  const int64_t N = 16;
  torch::manual_seed(0);
  auto op = msconv::nn::makeOperator(msconv::nn::parseOpSpec("msconv-official"),
                                     msconv::nn::OpContext{static_cast<int>(C), 1});
  op->train();
  auto* ms = dynamic_cast<msconv::nn::MSConvImpl*>(op.get());
  const GateFn gate = [&](const torch::Tensor& s) { return ms->gate(s, fused); };
  const auto u1 = torch::randn({N, C, H, W}).requires_grad_(true);
  const auto u2 = torch::randn({N, C, H, W}).requires_grad_(true);
  const auto dv = torch::randn({N, C, H, W});
  const auto s0 = torch::randn({N, C, 1, 1}).requires_grad_(true);
  const auto dc = torch::randn({N, C, 1, 1});
  auto pass = [&] {
    if (kind >= 2) {
      gate(s0).backward(dc);
      s0.mutable_grad() = torch::Tensor();
      return;
    }
    const auto r = fused ? msconv::nn::fusedMsFusion(u1, u2, gate)
                         : msconv::nn::composedMsFusion(u1, u2, gate);
    r.v.backward(dv);
    u1.mutable_grad() = torch::Tensor();
    u2.mutable_grad() = torch::Tensor();
  };
  pass();
  for (auto _ : state) pass();
  state.counters["passes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["c"] = C, state.counters["h"] = H, state.counters["w"] = W;
}

// The whole operator (branches, gate, fusion, projection), forward + backward, training mode.
void msconvOp(benchmark::State& state) {
  msconv::setThreads(0);
  msconv::keepFreedMemory();
  const auto [C, H, W] = stageShape(static_cast<int>(state.range(0)));
  torch::manual_seed(0);
  auto op = msconv::nn::makeOperator(msconv::nn::parseOpSpec("msconv-official"),
                                     msconv::nn::OpContext{static_cast<int>(C), 1});
  op->train();
  const auto x = torch::randn({16, C, H, W}).requires_grad_(true);
  const auto dy = torch::randn({16, C, H, W});
  auto pass = [&] {
    op->zero_grad();
    op->forward(x, nullptr, "op").backward(dy);
    x.mutable_grad() = torch::Tensor();
  };
  pass();
  for (auto _ : state) pass();
  state.counters["passes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["c"] = C, state.counters["h"] = H, state.counters["w"] = W;
}

// The machine's convolution peak: a large 3x3 convolution forward, in GFLOP/s (2 per MAC).
void convPeak(benchmark::State& state) {
  msconv::setThreads(0);
  torch::NoGradGuard no_grad;
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(256, 256, 3).padding(1).bias(false));
  const auto x = torch::randn({16, 256, 28, 28});
  conv->forward(x);
  for (auto _ : state) benchmark::DoNotOptimize(conv->forward(x));
  const double flops = 2.0 * 16 * 256 * 256 * 9 * 28 * 28;
  state.counters["gflops"] =
      benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

// MSNet-50 (msconv-official) training step at batch 16: peak resident memory of the process, and
// the MACs per sample for the FLOP utilisation.
void trainMemory(benchmark::State& state) {
  msconv::setThreads(0);
  msconv::keepFreedMemory();
  torch::manual_seed(0);
  auto model = msconv::nn::makeBackbone("msnet50", "msconv-official");
  const double gmacs = msconv::nn::measureComplexity(*model, 112, 1).macs / 1e9;
  model->train();
  torch::nn::Linear head(model->embeddingDim(), 1000);
  std::vector<torch::Tensor> params = model->parameters();
  for (auto& p : head->parameters()) params.push_back(p);
  torch::optim::SGD opt(params, torch::optim::SGDOptions(0.02).momentum(0.9).weight_decay(5e-4));
  const auto x = torch::randn({16, 3, 112, 112});
  const auto y = torch::randint(0, 1000, {16}, torch::kLong);
  for (auto _ : state) {
    opt.zero_grad();
    torch::nn::functional::cross_entropy(head->forward(model->forward(x)), y).backward();
    opt.step();
  }
  state.counters["peak_rss_mib"] = msconv::bench::peakRssMiB();
  state.counters["gmacs_per_sample"] = gmacs;
}

}  // namespace

BENCHMARK_CAPTURE(fusionStage, fused, 0)
    ->DenseRange(1, 4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);
BENCHMARK_CAPTURE(fusionStage, composed, 1)
    ->DenseRange(1, 4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);
BENCHMARK_CAPTURE(fusionStage, gate_only, 2)
    ->DenseRange(1, 4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);
BENCHMARK_CAPTURE(fusionStage, gate_only_fused, 3)
    ->DenseRange(1, 4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);
BENCHMARK(msconvOp)->DenseRange(1, 4)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(convPeak)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(trainMemory)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(4);
