// Which per-ISA copy of a set of hand-written kernels this CPU runs (the copies are compiled with
// __attribute__((target(...))) in one file each: fusion.cpp, bn_prelu.cpp, group_conv.cpp).
#pragma once

namespace msconv::nn {

// The widest copy the CPU supports: AVX-512 (F, VL, BW, DQ), else AVX2 + FMA, else `generic`
// (which may be null where a kernel set has no portable copy).
template <typename T>
const T* widestIsa(const T* avx512, const T* avx2, const T* generic) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return avx2;
  return generic;
}

}  // namespace msconv::nn
