// AddressSanitizer builds only (tests/sanitize/run.sh address; core/CMakeLists.txt adds this file
// to every executable that links the core): LibTorch's CPU tensors come from a cache of freed
// blocks, poisoned while they wait.
//
// Under ASan every large allocation is a fresh mapping, faulted in page by page with its shadow
// written, and unmapped again on free. A LibTorch training step allocates and frees tens of
// megabytes per layer, so the sanitized msconv spent most of its time in the kernel: a 12-step
// msnet-tiny run took minutes instead of seconds. The Release build answers the same churn with
// glibc settings (keepFreedMemory, runtime.cpp), which ASan's allocator ignores.
//
// What ASan still sees: a freed block is poisoned until it is handed out again (a read or write
// of a freed tensor's memory is reported, as use-after-poison); blocks are reused only at their
// exact size, so ASan's redzone after each block still catches overflows. What it no longer
// sees: an access through a stale pointer to a block that was handed out again.
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <sanitizer/asan_interface.h>

#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>

namespace {

class BlockCache final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    if (n == 0) return {nullptr, nullptr, &release, c10::Device(c10::DeviceType::CPU)};
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto it = free_.find(n);
      if (it != free_.end()) {
        p = it->second;
        free_.erase(it);
        cached_ -= n;
        sizes_[p] = n;
      }
    }
    if (p) {
      ASAN_UNPOISON_MEMORY_REGION(p, n);
    } else {
      p = c10::alloc_cpu(n);  // outside the lock: a fresh block may take a while
      std::lock_guard<std::mutex> lock(mu_);
      sizes_[p] = n;
    }
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static BlockCache& instance() {
    static BlockCache* cache = new BlockCache;  // never destroyed: tensors outlive static dtors
    return *cache;
  }

 private:
  static constexpr size_t kMaxCached = size_t{1} << 30;

  static void release(void* p) {
    if (p) instance().put(p);
  }

  void put(void* p) const {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = sizes_.find(p);
    const size_t n = it->second;
    sizes_.erase(it);
    if (cached_ + n > kMaxCached) {
      c10::free_cpu(p);
      return;
    }
    ASAN_POISON_MEMORY_REGION(p, n);
    free_.emplace(n, p);
    cached_ += n;
  }

  mutable std::mutex mu_;
  mutable std::multimap<size_t, void*> free_;
  mutable std::unordered_map<void*, size_t> sizes_;
  mutable size_t cached_ = 0;
};

// LibTorch registered its own CPU allocator at priority 0 while its library loaded.
[[maybe_unused]] const bool installed = [] {
  c10::SetCPUAllocator(&BlockCache::instance(), /*priority=*/1);
  return true;
}();

}  // namespace
