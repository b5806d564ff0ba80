// The training loader: worker threads decode and augment (horizontal flip, pixels to [-1, 1],
// optional channels-last) whole batches into a bounded prefetch queue, delivered in order. The
// order is a per-epoch shuffle from a seed, sharded by rank / world size, so every rank of a
// distributed run sees its own disjoint share, and the same seed gives the same batches.
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "msconv/data/dataset.h"

namespace msconv::data {

struct LoaderOptions {
  int batch_size = 64;
  int threads = 2;
  bool shuffle = true;
  uint64_t seed = 0;
  bool flip = true;            // random horizontal flip, p = 0.5
  bool channels_last = false;  // images stored N x H x W x C (logical N x C x H x W)
  int rank = 0, world = 1;
  bool drop_last = true;
  int prefetch = 4;       // batches decoded ahead
  bool skip_bad = false;  // skip undecodable samples (counted) instead of failing
  int size = 112;
};

struct Batch {
  int64_t index = 0;             // within the epoch
  at::Tensor images;             // float32 N x 3 x size x size in [-1, 1]
  at::Tensor labels;             // int64 N
  std::vector<int64_t> samples;  // dataset indices
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const FaceDataset> dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Starts (or restarts) delivery of `epoch`'s batches, from batch `first_batch` on (a resumed
  // run skips what it consumed before).
  void startEpoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch in order, or nullopt when the epoch is done. A decode error (without skip_bad)
  // is rethrown here as msconv::Error naming the sample.
  std::optional<Batch> next();
  int64_t batchesPerEpoch() const;
  int64_t samplesPerEpoch() const;
  int64_t skipped() const { return skipped_.load(); }
  const LoaderOptions& options() const { return opts_; }
  // This rank's sample order for an epoch (before batching).
  std::vector<int64_t> epochOrder(int64_t epoch) const;

 private:
  void stop();
  void work();
  Batch build(int64_t b);

  std::shared_ptr<const FaceDataset> data_;
  LoaderOptions opts_;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
  int64_t batches_ = 0;
  std::atomic<int64_t> next_build_{0};
  int64_t next_deliver_ = 0;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  std::vector<std::thread> workers_;
  std::atomic<int64_t> skipped_{0};
};

}  // namespace msconv::data
