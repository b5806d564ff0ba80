#include "msconv/nn/batch_norm.h"

#include <torch/autograd.h>
#include <torch/torch.h>

#include "msconv/error.h"

namespace msconv::nn::detail {
template <typename Options>
void printBatchNorm(std::ostream& s, int dims, const Options& o) {
  s << "torch::nn::BatchNorm" << dims << "d(" << o.num_features() << ", eps=" << o.eps()
    << ", momentum=";
  if (o.momentum())
    s << *o.momentum();
  else
    s << "None";
  s << ", affine=" << (o.affine() ? "true" : "false")
    << ", track_running_stats=" << (o.track_running_stats() ? "true" : "false") << ")";
}

}  // namespace msconv::nn::detail

// LibTorch instantiates BatchNormImplBase's pretty_print only inside its own BatchNorm classes
// (no exported symbol); a derived class's construction vtable needs one.
namespace torch::nn {
template <>
void BatchNormImplBase<2, BatchNorm2dImpl>::pretty_print(std::ostream& stream) const {
  msconv::nn::detail::printBatchNorm(stream, 2, options);
}
template <>
void BatchNormImplBase<1, BatchNorm1dImpl>::pretty_print(std::ostream& stream) const {
  msconv::nn::detail::printBatchNorm(stream, 1, options);
}
}  // namespace torch::nn

namespace msconv::nn {
namespace {

// A sum over ranks whose gradient is again a sum over ranks: each rank's share of the loss
// reaches the statistics through its own samples only (torch.distributed.nn's all_reduce).
struct SyncSum : torch::autograd::Function<SyncSum> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            BatchSync* sync) {
    ctx->saved_data["sync"] = reinterpret_cast<int64_t>(sync);
    std::vector<at::Tensor> v{x.detach().clone()};
    sync->allReduceSum(v);
    return v[0];
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* sync = reinterpret_cast<BatchSync*>(ctx->saved_data["sync"].toInt());
    std::vector<at::Tensor> v{grads[0].contiguous().clone()};
    sync->allReduceSum(v);
    return {v[0], at::Tensor()};
  }
};

// Batch statistics over every rank in one sum of (sum, sum of squares, count) per channel, in
// double precision so that the variance E[x^2] - E[x]^2 keeps float's accuracy; the running
// statistics updated as LibTorch's BatchNorm does (unbiased variance over the global count).
template <typename Options>
at::Tensor syncForward(const at::Tensor& x, const Options& o, BatchSync& sync, at::Tensor& weight,
                       at::Tensor& bias, at::Tensor& running_mean, at::Tensor& running_var,
                       at::Tensor& num_batches_tracked) {
  const int64_t C = x.size(1);
  std::vector<int64_t> dims{0}, shape(x.dim(), 1);
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  shape[1] = C;
  const double local = static_cast<double>(x.numel() / C);
  const auto xd = x.to(torch::kDouble);
  const auto s = SyncSum::apply(
      torch::cat({xd.sum(dims), (xd * xd).sum(dims), torch::full({1}, local, xd.options())}),
      &sync);
  const double n = s[2 * C].item<double>();
  const auto mean_d = s.narrow(0, 0, C) / n;
  const auto mean = mean_d.to(x.scalar_type());
  const auto var = (s.narrow(0, C, C) / n - mean_d * mean_d).clamp_min(0).to(x.scalar_type());
  const auto xc = x - mean.view(shape);
  auto y = xc * torch::rsqrt(var + o.eps()).view(shape);
  if (o.affine()) y = y * weight.view(shape) + bias.view(shape);
  if (o.track_running_stats()) {
    torch::NoGradGuard no_grad;
    num_batches_tracked += 1;
    const double m = o.momentum() ? *o.momentum() : 1.0 / num_batches_tracked.item<double>();
    running_mean.mul_(1 - m).add_(mean.detach(), m);
    running_var.mul_(1 - m).add_(var.detach() * (n / std::max(1.0, n - 1)), m);
  }
  return y;
}

}  // namespace

at::Tensor BatchNorm2dImpl::forward(const at::Tensor& input) {
  if (folded) {
    if (is_training())
      throw Error("a BatchNorm folded into its convolution for inference cannot train");
    return input;
  }
  if (!sync || !is_training()) return torch::nn::BatchNorm2dImpl::forward(input);
  _check_input_dim(input);
  return syncForward(input, options, *sync, weight, bias, running_mean, running_var,
                     num_batches_tracked);
}

at::Tensor BatchNorm1dImpl::forward(const at::Tensor& input) {
  if (!sync || !is_training()) return torch::nn::BatchNorm1dImpl::forward(input);
  _check_input_dim(input);
  return syncForward(input, options, *sync, weight, bias, running_mean, running_var,
                     num_batches_tracked);
}

int syncBatchNorm(torch::nn::Module& module, std::shared_ptr<BatchSync> sync) {
  int n = 0;
  for (const auto& m : module.modules()) {
    if (auto* b = dynamic_cast<BatchNorm2dImpl*>(m.get())) b->sync = sync, ++n;
    if (auto* b = dynamic_cast<BatchNorm1dImpl*>(m.get())) b->sync = sync, ++n;
  }
  return n;
}

}  // namespace msconv::nn
