// Data throughput: the loader decoding and augmenting 112 x 112 JPEGs with 2 threads (target
// 2,500 images/s) and the synthetic face generator (target 2,000 images/s on 2 cores).
#include <benchmark/benchmark.h>

#include <filesystem>

#include "msconv/data/dataset.h"
#include "msconv/data/loader.h"
#include "msconv/data/synth.h"

namespace {

const std::string& jpegSet() {
  static const std::string dir = [] {
    const std::string d = (std::filesystem::temp_directory_path() / "msconv_bench_jpegs").string();
    msconv::data::SynthOptions o;
    o.identities = 100;
    o.images_per_id = 40;
    o.pairs = 0;
    msconv::data::generateSyntheticFaces(d, o);
    return d;
  }();
  return dir;
}

void loaderJpeg(benchmark::State& state) {
  auto ds =
      std::shared_ptr<const msconv::data::FaceDataset>(msconv::data::openTrainingSet(jpegSet()));
  msconv::data::LoaderOptions o;
  o.batch_size = 64;
  o.threads = static_cast<int>(state.range(0));
  msconv::data::DataLoader loader(ds, o);
  int64_t images = 0, epoch = 0;
  for (auto _ : state) {
    loader.startEpoch(epoch++);
    while (auto b = loader.next()) images += b->images.size(0);
  }
  state.counters["images_per_s"] =
      benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}

void synthGenerate(benchmark::State& state) {
  const std::string d = (std::filesystem::temp_directory_path() / "msconv_bench_synth").string();
  msconv::data::SynthOptions o;
  o.identities = 50;
  o.images_per_id = 40;
  o.pairs = 0;
  o.threads = static_cast<int>(state.range(0));
  int64_t images = 0;
  for (auto _ : state) {
    std::filesystem::remove_all(d);
    images += msconv::data::generateSyntheticFaces(d, o).train_images;
  }
  std::filesystem::remove_all(d);
  state.counters["images_per_s"] =
      benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(loaderJpeg)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(synthGenerate)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

BENCHMARK_MAIN();
