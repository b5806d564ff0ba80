#include "train/grad_sync.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

namespace msconv::train {

struct GradientSync::State {
  Collective* group = nullptr;
  std::vector<torch::Tensor> params;
  std::vector<std::vector<size_t>> buckets;
  std::vector<size_t> bucket_of;                  // parameter -> bucket
  std::vector<size_t> pending;                    // per bucket: gradients not yet accumulated
  std::vector<std::vector<torch::Tensor>> grads;  // per bucket, while its sum runs
  std::vector<std::function<void()>> waits;
  size_t next = 0;  // the first bucket not started
  bool armed = false;

  void ready(size_t param) {
    if (!armed) return;
    const size_t b = bucket_of[param];
    if (pending[b] > 0) --pending[b];
    while (next < buckets.size() && pending[next] == 0) start(next++);
  }
  void start(size_t b) {
    auto& g = grads[b];
    g.clear();
    for (size_t i : buckets[b]) {
      auto& p = params[i];
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      g.push_back(p.grad());
    }
    waits.push_back(group->allReduceSumAsync(g));
  }
};

namespace {

struct ReadyHook : torch::autograd::FunctionPostHook {
  ReadyHook(std::weak_ptr<GradientSync::State> s, size_t i) : state(std::move(s)), index(i) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    if (auto s = state.lock()) s->ready(index);
    return outputs;
  }
  std::weak_ptr<GradientSync::State> state;
  size_t index;
};

}  // namespace

GradientSync::GradientSync(std::vector<torch::Tensor> params, Collective& group,
                           size_t bucket_bytes)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.group = &group;
  s.params = std::move(params);
  s.bucket_of.resize(s.params.size());
  size_t bytes = 0;
  for (size_t k = s.params.size(); k-- > 0;) {
    if (buckets_.empty() || bytes >= bucket_bytes) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().push_back(k);
    s.bucket_of[k] = buckets_.size() - 1;
    bytes += s.params[k].numel() * s.params[k].element_size();
  }
  s.buckets = buckets_;
  s.pending.resize(buckets_.size());
  s.grads.resize(buckets_.size());
  for (size_t k = 0; k < s.params.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(s.params[k]);
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<ReadyHook>(state_, k)));
    accumulators_.push_back(std::move(acc));
  }
}

GradientSync::~GradientSync() {
  for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hook_keys_[k]);
}

void GradientSync::arm() {
  State& s = *state_;
  for (size_t b = 0; b < s.buckets.size(); ++b) s.pending[b] = s.buckets[b].size();
  s.next = 0;
  s.waits.clear();
  s.armed = true;
}

void GradientSync::finish() {
  State& s = *state_;
  if (!s.armed) return;
  s.armed = false;
  while (s.next < s.buckets.size()) s.start(s.next++);  // parameters that got no gradient
  for (auto& w : s.waits) w();
  s.waits.clear();
}

}  // namespace msconv::train
