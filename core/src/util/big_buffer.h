// A large uninitialised array on 2 MiB-aligned memory marked for transparent huge pages: for the
// hundreds of megabytes IJB-scale evaluation streams through, first-touch page faults (one per
// 4 KiB page otherwise, costly under virtualisation) and zero-filling would cost more than the
// work itself.
#pragma once

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>

namespace msconv::util {

template <typename T>
class BigBuffer {
 public:
  explicit BigBuffer(int64_t n) : n_(n) {
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t bytes = ((std::max<int64_t>(n, 1) * sizeof(T) + kHuge - 1) / kHuge) * kHuge;
    p_ = static_cast<T*>(std::aligned_alloc(kHuge, bytes));
    if (!p_) throw std::bad_alloc();
    ::madvise(p_, bytes, MADV_HUGEPAGE);
  }
  ~BigBuffer() { std::free(p_); }
  BigBuffer(const BigBuffer&) = delete;
  BigBuffer& operator=(const BigBuffer&) = delete;
  T* data() { return p_; }
  T& operator[](int64_t i) { return p_[i]; }
  int64_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  int64_t n_;
};

}  // namespace msconv::util
