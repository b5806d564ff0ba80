#include "msconv/data/loader.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "msconv/data/decode.h"
#include "msconv/error.h"
#include "util/hash.h"

namespace msconv::data {
namespace {

// One decoded RGB image (size x size x 3, uint8) into slot i of the batch, flipped if asked.
void store(const cv::Mat& rgb, bool flip, float* dst, bool channels_last, int size) {
  const int plane = size * size;
  for (int y = 0; y < size; ++y) {
    const uint8_t* row = rgb.ptr<uint8_t>(y);
    for (int x = 0; x < size; ++x) {
      const uint8_t* px = row + 3 * (flip ? size - 1 - x : x);
      if (channels_last) {
        float* d = dst + 3 * (y * size + x);
        d[0] = px[0] / 127.5f - 1.f;
        d[1] = px[1] / 127.5f - 1.f;
        d[2] = px[2] / 127.5f - 1.f;
      } else {
        const int o = y * size + x;
        dst[o] = px[0] / 127.5f - 1.f;
        dst[plane + o] = px[1] / 127.5f - 1.f;
        dst[2 * plane + o] = px[2] / 127.5f - 1.f;
      }
    }
  }
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const FaceDataset> dataset, LoaderOptions options)
    : data_(std::move(dataset)), opts_(options) {
  if (opts_.batch_size < 1) throw Error("loader: batch size must be positive");
  if (opts_.world < 1 || opts_.rank < 0 || opts_.rank >= opts_.world)
    throw Error("loader: rank " + std::to_string(opts_.rank) + " outside world size " +
                std::to_string(opts_.world));
  opts_.threads = std::max(1, opts_.threads);
  opts_.prefetch = std::max(1, opts_.prefetch);
}

DataLoader::~DataLoader() {
  stop();
}

std::vector<int64_t> DataLoader::epochOrder(int64_t epoch) const {
  const int64_t n = static_cast<int64_t>(data_->size());
  std::vector<int64_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  if (opts_.shuffle) {
    std::mt19937_64 rng(
        util::splitmix64(opts_.seed * 1315423911ull + static_cast<uint64_t>(epoch)));
    std::shuffle(all.begin(), all.end(), rng);
  }
  // Equal shares: every rank gets n / world samples, strided.
  const int64_t share = n / opts_.world;
  std::vector<int64_t> mine;
  mine.reserve(share);
  for (int64_t i = 0; i < share; ++i) mine.push_back(all[i * opts_.world + opts_.rank]);
  return mine;
}

int64_t DataLoader::samplesPerEpoch() const {
  return static_cast<int64_t>(data_->size()) / opts_.world;
}

int64_t DataLoader::batchesPerEpoch() const {
  const int64_t n = samplesPerEpoch();
  return opts_.drop_last ? n / opts_.batch_size : (n + opts_.batch_size - 1) / opts_.batch_size;
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(m_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void DataLoader::startEpoch(int64_t epoch, int64_t first_batch) {
  stop();
  epoch_ = epoch;
  order_ = epochOrder(epoch);
  batches_ = batchesPerEpoch();
  next_build_ = std::min(first_batch, batches_);
  next_deliver_ = std::min(first_batch, batches_);
  ready_.clear();
  error_ = nullptr;
  stopping_ = false;
  started_ = true;
  for (int t = 0; t < opts_.threads; ++t) workers_.emplace_back([this] { work(); });
}

Batch DataLoader::build(int64_t b) {
  const int64_t begin = b * opts_.batch_size;
  const int64_t end = std::min<int64_t>(begin + opts_.batch_size, order_.size());
  const int S = opts_.size;
  Batch batch;
  batch.index = b;
  auto images = opts_.channels_last ? torch::empty({end - begin, S, S, 3})
                                    : torch::empty({end - begin, 3, S, S});
  std::vector<int64_t> labels;
  float* base = images.data_ptr<float>();
  int64_t filled = 0;
  for (int64_t i = begin; i < end; ++i) {
    const int64_t s = order_[i];
    cv::Mat rgb;
    try {
      rgb = decodeFace(data_->encoded(s), data_->describe(s), S);
    } catch (const Error&) {
      if (!opts_.skip_bad) throw;
      ++skipped_;
      continue;
    }
    const bool flip =
        opts_.flip &&
        (util::splitmix64(opts_.seed ^ util::splitmix64(epoch_ * 1000003ull + s)) & 1);
    store(rgb, flip, base + filled * 3 * S * S, opts_.channels_last, S);
    labels.push_back(data_->label(s));
    batch.samples.push_back(s);
    ++filled;
  }
  images = images.narrow(0, 0, filled);
  batch.images = opts_.channels_last ? images.permute({0, 3, 1, 2}) : images;
  batch.labels = torch::tensor(labels, torch::kInt64);
  return batch;
}

void DataLoader::work() {
  while (true) {
    const int64_t b = next_build_++;
    if (b >= batches_) return;
    {
      // Bounded prefetch: wait until the consumer is within reach.
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] { return stopping_ || b < next_deliver_ + opts_.prefetch; });
      if (stopping_) return;
    }
    Batch batch;
    std::exception_ptr err;
    try {
      batch = build(b);
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(m_);
      if (err && !error_) error_ = err;
      ready_[b] = std::move(batch);
    }
    cv_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  if (!started_) startEpoch(epoch_);
  std::unique_lock<std::mutex> lock(m_);
  if (next_deliver_ >= batches_) return std::nullopt;
  cv_.wait(lock, [&] { return error_ || ready_.count(next_deliver_) > 0; });
  if (error_) {
    auto err = error_;
    lock.unlock();
    stop();
    std::rethrow_exception(err);
  }
  Batch b = std::move(ready_[next_deliver_]);
  ready_.erase(next_deliver_++);
  lock.unlock();
  cv_.notify_all();
  return b;
}

}  // namespace msconv::data
