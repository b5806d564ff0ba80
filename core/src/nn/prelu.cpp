#include "msconv/nn/prelu.h"

#include "msconv/nn/kernel_switch.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

namespace msconv::nn {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// The plane kernels: plain loops over restrict pointers with selects on local values, which GCC
// vectorises (a branch on the sign of random data mispredicts half the time and runs several
// times slower).
void forwardPlane(const float* __restrict__ in, float* __restrict__ out, int64_t n, float a) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[i];
    const float m = v > 0.f ? 1.f : a;
    out[i] = v * m;
  }
}

// Writes the input gradient of one plane and returns its share of the slope gradient.
float backwardPlane(const float* __restrict__ in, const float* __restrict__ g,
                    float* __restrict__ gin, int64_t n, float a) {
  float part = 0.f;
#pragma omp simd reduction(+ : part)
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[i];
    const float m = v > 0.f ? 1.f : a;
    const float neg = v > 0.f ? 0.f : 1.f;  // 1 where the slope applies
    gin[i] = g[i] * m;
    part += neg * g[i] * v;
  }
  return part;
}

// One shared slope: x and the output share one dense layout, so the data is numel floats in
// memory order whatever the layout.
bool sharedDense(const torch::Tensor& x, const torch::Tensor& w) {
  return x.scalar_type() == torch::kFloat32 && w.scalar_type() == torch::kFloat32 &&
         w.numel() == 1 && x.numel() > 0 && x.is_non_overlapping_and_dense() &&
         x.device().is_cpu() && w.device().is_cpu();
}

// The chunk of the shared slope's gradient sum: fixed, so the sum's order is the same on any
// number of threads.
constexpr int64_t kSharedChunk = 1 << 15;

class SharedPReLUFunction : public torch::autograd::Function<SharedPReLUFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w) {
    RECORD_FUNCTION("msconv::prelu_shared", std::vector<c10::IValue>());  // for the profiler
    ctx->save_for_backward({x, w});
    auto y = torch::empty_like(x);  // the same dense layout as x
    const float* px = x.data_ptr<float>();
    float* py = y.data_ptr<float>();
    const float a = w.data_ptr<float>()[0];
    at::parallel_for(0, x.numel(), kSharedChunk,
                     [&](int64_t b, int64_t e) { forwardPlane(px + b, py + b, e - b, a); });
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    torch::Tensor g = grads[0];
    if (g.strides() != x.strides()) g = torch::empty_like(x).copy_(g);
    auto gx = torch::empty_like(x);
    const int64_t n = x.numel(), chunks = (n + kSharedChunk - 1) / kSharedChunk;
    std::vector<double> part(static_cast<size_t>(chunks), 0.0);
    const float* px = x.data_ptr<float>();
    const float* pg = g.data_ptr<float>();
    float* pgx = gx.data_ptr<float>();
    const float a = w.data_ptr<float>()[0];
    at::parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        const int64_t b = c * kSharedChunk, e = std::min(n, b + kSharedChunk);
        part[static_cast<size_t>(c)] = backwardPlane(px + b, pg + b, pgx + b, e - b, a);
      }
    });
    double acc = 0.0;
    for (double p : part) acc += p;
    return {gx, torch::full_like(w, acc)};
  }
};

// x viewed as [N, C, S] (S = spatial size, 1 for 2-d input), contiguous.
bool planar(const torch::Tensor& x, const torch::Tensor& w) {
  return x.scalar_type() == torch::kFloat32 && w.scalar_type() == torch::kFloat32 && x.dim() >= 2 &&
         x.is_contiguous() && w.dim() == 1 && w.size(0) == x.size(1) && x.device().is_cpu();
}

class PReLUFunction : public torch::autograd::Function<PReLUFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w) {
    RECORD_FUNCTION("msconv::prelu", std::vector<c10::IValue>());  // for the profiler
    ctx->save_for_backward({x, w});
    const int64_t N = x.size(0), C = x.size(1), S = x.numel() / std::max<int64_t>(1, N * C);
    auto y = torch::empty_like(x);
    const float* px = x.data_ptr<float>();
    const float* pw = w.data_ptr<float>();
    float* py = y.data_ptr<float>();
    at::parallel_for(0, N * C, std::max<int64_t>(1, 32768 / std::max<int64_t>(S, 1)),
                     [&](int64_t b, int64_t e) {
                       for (int64_t p = b; p < e; ++p)
                         forwardPlane(px + p * S, py + p * S, S, pw[p % C]);
                     });
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    const auto g = grads[0].contiguous();
    const int64_t N = x.size(0), C = x.size(1), S = x.numel() / std::max<int64_t>(1, N * C);
    auto gx = torch::empty_like(x);
    auto gw = torch::zeros_like(w);
    const float* px = x.data_ptr<float>();
    const float* pg = g.data_ptr<float>();
    const float* pw = w.data_ptr<float>();
    float* pgx = gx.data_ptr<float>();
    float* pgw = gw.data_ptr<float>();
    // Channels are independent: each task owns whole channels, so the slope sums need no atomics.
    at::parallel_for(0, C, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        const float a = pw[c];
        double acc = 0.0;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t off = (n * C + c) * S;
          acc += backwardPlane(px + off, pg + off, pgx + off, S, a);
        }
        pgw[c] = static_cast<float>(acc);
      }
    });
    return {gx, gw};
  }
};

}  // namespace

torch::Tensor preluForward(const torch::Tensor& x, const torch::Tensor& weight) {
  if (!customKernels()) return torch::prelu(x, weight);
  if (sharedDense(x, weight)) return SharedPReLUFunction::apply(x, weight);
  if (!planar(x, weight) || weight.numel() == 1) return torch::prelu(x, weight);
  return PReLUFunction::apply(x, weight);
}

PReLUImpl::PReLUImpl(int64_t num_parameters, double init) {
  weight = register_parameter("weight", torch::full({num_parameters}, init));
}

PReLU makePReLU(PReluSlopes slopes, int64_t channels) {
  return PReLU(slopes == PReluSlopes::kShared ? 1 : channels);
}

}  // namespace msconv::nn
