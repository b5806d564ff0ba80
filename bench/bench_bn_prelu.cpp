// BatchNorm (training) + PReLU with one shared slope, forward + backward, at the MSNet-50 shapes
// (batch 16, 112 x 112 input): the fused node against LibTorch's composition (torch::batch_norm,
// torch::prelu) and against the composition the model ran before (torch::batch_norm, then the
// hand-written shared-slope PReLU), the three interleaved in each iteration so that they share
// the machine's state. Counters: milliseconds per pass of each, and the ratios. And the MSNet-50
// training step with the fusion on and off, interleaved the same way.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <array>
#include <chrono>
#include <vector>

#include "msconv/nn/backbone.h"
#include "msconv/nn/bn_prelu.h"
#include "msconv/nn/kernel_switch.h"
#include "msconv/nn/prelu.h"
#include "msconv/runtime.h"

namespace {

// C, H, W: the stem, the stages' mid widths and their wide outputs.
constexpr std::array<std::array<int64_t, 3>, 9> kShapes = {{{64, 56, 56},
                                                            {128, 28, 28},
                                                            {256, 28, 28},
                                                            {256, 14, 14},
                                                            {512, 14, 14},
                                                            {512, 7, 7},
                                                            {1024, 7, 7},
                                                            {1024, 4, 4},
                                                            {2048, 4, 4}}};

// range(0): shape index; range(1): 1 for channels-last.
void bnPrelu(benchmark::State& state) {
  msconv::setThreads(0);
  msconv::keepFreedMemory();
  const auto [C, H, W] = kShapes[static_cast<size_t>(state.range(0))];
  const bool channels_last = state.range(1) != 0;
  torch::manual_seed(0);
  auto x = torch::randn({16, C, H, W}) * 2 + 0.5;
  if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  x.requires_grad_(true);
  const auto g = torch::randn_like(x);
  auto w = (torch::rand({C}) + 0.5).requires_grad_(true);
  auto b = (torch::randn({C}) * 0.1).requires_grad_(true);
  auto a = torch::full({1}, 0.25).requires_grad_(true);
  auto rm = torch::zeros({C}), rv = torch::ones({C});
  auto clear = [&] {
    for (auto* t : {&x, &w, &b, &a}) t->mutable_grad() = torch::Tensor();
  };
  // 0: fused; 1: LibTorch's composition; 2: LibTorch's BatchNorm + the hand-written PReLU.
  auto pass = [&](int kind) {
    torch::Tensor y;
    if (kind == 0) {
      y = msconv::nn::bnActTrain(x, w, b, rm, rv, msconv::nn::BnAct::kPReLU, a, 0.1, 1e-5);
    } else {
      const auto z = torch::batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5, false);
      y = kind == 1 ? torch::prelu(z, a) : msconv::nn::preluForward(z, a);
    }
    y.backward(g);
    clear();
  };
  for (int k = 0; k < 3; ++k) pass(k);
  double ms[3] = {0, 0, 0};
  for (auto _ : state) {
    for (int k = 0; k < 3; ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      pass(k);
      ms[k] +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["fused_ms"] = ms[0] / n;
  state.counters["libtorch_ms"] = ms[1] / n;
  state.counters["before_ms"] = ms[2] / n;
  state.counters["vs_libtorch"] = ms[1] / ms[0];
  state.counters["vs_before"] = ms[2] / ms[0];
  state.counters["c"] = static_cast<double>(C);
  state.counters["h"] = static_cast<double>(H);
  state.counters["w"] = static_cast<double>(W);
  state.counters["nhwc"] = channels_last ? 1 : 0;
}

// The MSNet-50 (msconv-official) training step at batch 16, three configurations interleaved
// step by step in one process: everything on; the BN + activation fusion off (the hand-written
// kernels otherwise on: the step as it was before the fusion); LibTorch's kernels only.
void bnPreluTrainStep(benchmark::State& state) {
  msconv::setThreads(0);
  msconv::keepFreedMemory();
  torch::manual_seed(0);
  auto model = msconv::nn::makeBackbone("msnet50", "msconv-official");
  model->train();
  torch::nn::Linear head(model->embeddingDim(), 1000);
  std::vector<torch::Tensor> params = model->parameters();
  for (auto& p : head->parameters()) params.push_back(p);
  torch::optim::SGD opt(params, torch::optim::SGDOptions(0.02).momentum(0.9).weight_decay(5e-4));
  const auto x = torch::randn({16, 3, 112, 112});
  const auto y = torch::randint(0, 1000, {16}, torch::kLong);
  auto step = [&](int kind) {
    msconv::nn::setBnActFusion(kind == 0);
    msconv::nn::setLibtorchKernelsOnly(kind == 2);
    opt.zero_grad();
    torch::nn::functional::cross_entropy(head->forward(model->forward(x)), y).backward();
    opt.step();
  };
  for (int k = 0; k < 3; ++k) step(k);
  double ms[3] = {0, 0, 0};
  int rotate = 0;  // the order rotates, so that no configuration always follows the same one
  for (auto _ : state) {
    for (int j = 0; j < 3; ++j) {
      const int k = (j + rotate) % 3;
      const auto t0 = std::chrono::steady_clock::now();
      step(k);
      ms[k] +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    ++rotate;
  }
  msconv::nn::setBnActFusion(true);
  msconv::nn::setLibtorchKernelsOnly(false);
  const double n = static_cast<double>(state.iterations());
  state.counters["fused_ms"] = ms[0] / n;
  state.counters["unfused_ms"] = ms[1] / n;
  state.counters["libtorch_ms"] = ms[2] / n;
  state.counters["vs_unfused"] = ms[1] / ms[0];
  state.counters["vs_libtorch"] = ms[2] / ms[0];
}

}  // namespace

BENCHMARK(bnPrelu)
    ->ArgsProduct({benchmark::CreateDenseRange(0, static_cast<int64_t>(kShapes.size()) - 1, 1),
                   {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);
BENCHMARK(bnPreluTrainStep)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(6);
