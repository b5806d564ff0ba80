// The one header a CUDA build of LibTorch generates that Debian's CPU libtorch-dev lacks: enough
// for the nccl_path_compiles check to read LibTorch's ProcessGroupNCCL.hpp with CUDA's nccl.h.
#pragma once
#define C10_CUDA_BUILD_SHARED_LIBS
