// The MSConv / SKConv branch convolutions of MSNet-50 (batch 16, 112 x 112 input: 32 groups, 3x3,
// dilation 1 and 2, padding = dilation): the hand-written grouped kernels against LibTorch's
// convolution (oneDNN), forward + backward (input and weight gradients), interleaved in the same
// process, stage by stage, stride 1 and the stride-2 first units of stages 2-4: ours for every
// pass, oneDNN for every pass, and the per-shape plan CountedConv2d runs (each pass by the faster,
// nn/group_conv.h's groupConvPlan). groupConvForward: the forward alone as msconv eval runs it.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>

#include "msconv/runtime.h"
// The kernels' header is internal to the core (core/src): reached from the bench directory.
#include "msconv/nn/group_conv.h"

namespace {

// Arguments: stage (1-4), dilation, stride, channels-last (0/1).
void groupConv(benchmark::State& state) {
  msconv::setThreads(0);
  msconv::keepFreedMemory();  // as in training: no fresh pages for every temporary
  const int64_t stage = state.range(0), dilation = state.range(1), stride = state.range(2);
  const bool channels_last = state.range(3) != 0;
  const int64_t N = 16, groups = 32, C = int64_t{128} << (stage - 1);
  const int64_t map = int64_t{28} >> (stage - 1) == 3 ? 4 : int64_t{28} >> (stage - 1);
  // The stride-2 first unit of a stage reads the previous stage's map.
  const int64_t in_map = stride == 2 ? (stage == 4 ? 7 : map * 2) : map;
  const auto format =
      channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  torch::manual_seed(0);
  const auto x = torch::randn({N, C, in_map, in_map}).contiguous(format).requires_grad_();
  const auto w = (torch::randn({C, C / groups, 3, 3}) * 0.1).requires_grad_();
  const int64_t out_map = (in_map - 1) / stride + 1;
  const auto dy = torch::randn({N, C, out_map, out_map}).contiguous(format);
  const auto ours = [&] {
    const auto y = msconv::nn::groupConv3x3(x, w, stride, dilation, groups);
    benchmark::DoNotOptimize(torch::autograd::grad({y}, {x, w}, {dy}));
  };
  const auto onednn = [&] {
    const auto y = torch::conv2d(x, w, {}, stride, dilation, dilation, groups);
    benchmark::DoNotOptimize(torch::autograd::grad({y}, {x, w}, {dy}));
  };
  msconv::nn::clearGroupConvDecisions();
  const auto plan = msconv::nn::groupConvPlan(x, w, false, {3, 3}, {stride, stride},
                                              {dilation, dilation}, {dilation, dilation}, groups);
  const auto planned = [&] {
    if (!plan) return onednn();
    const auto y = msconv::nn::groupConv3x3(x, w, stride, dilation, groups, {}, *plan);
    benchmark::DoNotOptimize(torch::autograd::grad({y}, {x, w}, {dy}));
  };
  ours();
  onednn();
  planned();
  double t_ours = 0, t_onednn = 0, t_planned = 0;
  using Clock = std::chrono::steady_clock;
  const auto timed = [](const auto& call, double& total) {
    const auto t0 = Clock::now();
    call();
    total += std::chrono::duration<double>(Clock::now() - t0).count();
  };
  for (auto _ : state) {
    timed(ours, t_ours);
    timed(onednn, t_onednn);
    timed(planned, t_planned);
  }
  // Forward, grad-input and grad-weight: 2 FLOPs per multiply-add each.
  const double flops = 3.0 * 2 * N * C * (C / groups) * 9 * out_map * out_map;
  const double n = static_cast<double>(state.iterations());
  state.counters["gflops"] = flops * n / t_ours / 1e9;
  state.counters["onednn_gflops"] = flops * n / t_onednn / 1e9;
  state.counters["planned_gflops"] = flops * n / t_planned / 1e9;
  // The plan, as bits: 1 our forward, 2 our grad-input, 4 our grad-weight (0: oneDNN whole).
  state.counters["plan"] =
      plan ? (plan->forward ? 1 : 0) + (plan->grad_input ? 2 : 0) + (plan->grad_weight ? 4 : 0) : 0;
  state.counters["c"] = static_cast<double>(C);
  state.counters["map"] = static_cast<double>(in_map);
  state.counters["dilation"] = static_cast<double>(dilation);
  state.counters["stride"] = static_cast<double>(stride);
  state.SetLabel(msconv::nn::groupConvIsa());
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int cl = 0; cl <= 1; ++cl) {
    for (int stage = 1; stage <= 4; ++stage)
      for (int dilation = 1; dilation <= 2; ++dilation) b->Args({stage, dilation, 1, cl});
    for (int stage = 2; stage <= 4; ++stage)
      for (int dilation = 1; dilation <= 2; ++dilation) b->Args({stage, dilation, 2, cl});
  }
}

// Inference: forward only, batch 64 (as msconv eval embeds), channels-last (the inference form's
// layout), under InferenceMode, with the bias a folded BatchNorm leaves. Arguments: stage,
// dilation, stride.
void groupConvForward(benchmark::State& state) {
  msconv::setThreads(0);
  msconv::keepFreedMemory();
  const int64_t stage = state.range(0), dilation = state.range(1), stride = state.range(2);
  const int64_t N = 64, groups = 32, C = int64_t{128} << (stage - 1);
  const int64_t map = int64_t{28} >> (stage - 1) == 3 ? 4 : int64_t{28} >> (stage - 1);
  const int64_t in_map = stride == 2 ? (stage == 4 ? 7 : map * 2) : map;
  torch::manual_seed(0);
  const auto x = torch::randn({N, C, in_map, in_map}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto w = torch::randn({C, C / groups, 3, 3}) * 0.1;
  const auto b = torch::randn({C});
  c10::InferenceMode guard;
  const auto ours = [&] {
    benchmark::DoNotOptimize(msconv::nn::groupConv3x3(x, w, stride, dilation, groups, b));
  };
  const auto onednn = [&] {
    benchmark::DoNotOptimize(torch::conv2d(x, w, b, stride, dilation, dilation, groups));
  };
  ours();
  onednn();
  double t_ours = 0, t_onednn = 0;
  using Clock = std::chrono::steady_clock;
  for (auto _ : state) {
    auto t0 = Clock::now();
    ours();
    t_ours += std::chrono::duration<double>(Clock::now() - t0).count();
    t0 = Clock::now();
    onednn();
    t_onednn += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  const int64_t out_map = (in_map - 1) / stride + 1;
  const double flops = 2.0 * N * C * (C / groups) * 9 * out_map * out_map;
  const double n = static_cast<double>(state.iterations());
  state.counters["gflops"] = flops * n / t_ours / 1e9;
  state.counters["onednn_gflops"] = flops * n / t_onednn / 1e9;
  state.counters["ratio"] = t_onednn / t_ours;
  state.SetLabel(msconv::nn::groupConvIsa());
}

void forwardShapes(benchmark::internal::Benchmark* b) {
  for (int stage = 1; stage <= 4; ++stage)
    for (int dilation = 1; dilation <= 2; ++dilation) b->Args({stage, dilation, 1});
  for (int stage = 2; stage <= 4; ++stage)
    for (int dilation = 1; dilation <= 2; ++dilation) b->Args({stage, dilation, 2});
}

}  // namespace

BENCHMARK(groupConvForward)
    ->Apply(forwardShapes)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.5);
BENCHMARK(groupConv)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);
