// Inspection as the workbench uses it on a click: GradCAM at the four stage layers of three
// tiny-preset models (MSConv, SKNet, SCConv), one image, cosine target; the time of the whole
// set of CAMs (target: 250 ms on 2 cores).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "msconv/data/synth.h"
#include "msconv/inspect/inspect.h"
#include "msconv/nn/backbone.h"
#include "msconv/runtime.h"

namespace {

void gradcamTinyModels(benchmark::State& state) {
  msconv::setThreads(0);
  torch::manual_seed(0);
  std::vector<msconv::nn::Backbone> models;
  for (const char* op : {"msconv-official", "skconv", "scconv"})
    models.push_back(msconv::nn::makeBackbone("msnet-tiny", op));
  const auto face = msconv::inspect::bgrToTensor(msconv::data::renderFace(
      msconv::data::identityTraits(1, 0), msconv::data::imageNuisance(1, 0, 0), 112));
  std::vector<msconv::inspect::CamTarget> targets;
  for (auto& m : models) targets.push_back(msconv::inspect::cosineTarget(*m, face.flip({2})));
  auto all = [&] {
    for (size_t i = 0; i < models.size(); ++i)
      benchmark::DoNotOptimize(
          msconv::inspect::computeCams(*models[i], face, targets[i], {}).cams.size());
  };
  all();
  for (auto _ : state) all();  // real_time per iteration (ms) is the figure
}

}  // namespace

BENCHMARK(gradcamTinyModels)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
