#include "msconv/train/collective.h"

#include <torch/torch.h>

#include <condition_variable>
#include <mutex>

#include "msconv/error.h"

namespace msconv::train {
namespace {

class Single final : public Collective {
 public:
  int rank() const override { return 0; }
  int worldSize() const override { return 1; }
  void allReduceSum(std::vector<at::Tensor>&) override {}
  void allReduceMax(at::Tensor&) override {}
  void broadcast(std::vector<at::Tensor>&, int) override {}
  at::Tensor allGather(const at::Tensor& t) override { return t; }
};

// Shared state of a thread group: a generation-counted barrier and one slot per rank.
struct Group {
  explicit Group(int n) : world(n), slots(n) {}
  const int world;
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  int64_t generation = 0;
  std::vector<std::vector<at::Tensor>> slots;
  std::string aborted;  // why a rank gave up: the others stop waiting

  void barrier() {
    std::unique_lock<std::mutex> lock(mu);
    if (!aborted.empty()) throw Error(aborted);
    const int64_t gen = generation;
    if (++arrived == world) {
      arrived = 0;
      ++generation;
      cv.notify_all();
    } else {
      cv.wait(lock, [&] { return generation != gen || !aborted.empty(); });
      if (generation == gen) throw Error(aborted);
    }
  }
  void abort(const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (aborted.empty()) aborted = why;
    }
    cv.notify_all();
  }
};

class Threaded final : public Collective {
 public:
  Threaded(std::shared_ptr<Group> g, int rank) : g_(std::move(g)), rank_(rank) {}
  int rank() const override { return rank_; }
  int worldSize() const override { return g_->world; }

  void allReduceSum(std::vector<at::Tensor>& tensors) override {
    reduce(tensors, [](const at::Tensor& a, const at::Tensor& b) { return a + b; });
  }
  void allReduceMax(at::Tensor& tensor) override {
    std::vector<at::Tensor> v{tensor};
    reduce(v, [](const at::Tensor& a, const at::Tensor& b) { return torch::maximum(a, b); });
  }
  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    std::vector<at::Tensor> mine;
    if (rank_ == root)
      for (const auto& t : tensors) mine.push_back(t.detach().clone());
    const auto all = exchange(std::move(mine));
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < tensors.size(); ++i) tensors[i].copy_(all[root][i]);
  }
  void waitForRankZero() override { g_->barrier(); }
  void abort(const std::string& why) override {
    g_->abort("rank " + std::to_string(rank_) + " failed: " + why);
  }
  at::Tensor allGather(const at::Tensor& tensor) override {
    const auto all = exchange({tensor.detach().clone()});
    std::vector<at::Tensor> parts;
    for (const auto& s : all) parts.push_back(s[0]);
    return torch::cat(parts);
  }

 private:
  // Publishes this rank's tensors, waits for all, returns a copy of every rank's list.
  std::vector<std::vector<at::Tensor>> exchange(std::vector<at::Tensor> mine) {
    {
      std::lock_guard<std::mutex> lock(g_->mu);
      g_->slots[rank_] = std::move(mine);
    }
    g_->barrier();
    std::vector<std::vector<at::Tensor>> all;
    {
      std::lock_guard<std::mutex> lock(g_->mu);
      all = g_->slots;
    }
    g_->barrier();  // nobody overwrites a slot before everyone has read it
    return all;
  }
  template <typename Op>
  void reduce(std::vector<at::Tensor>& tensors, Op op) {
    std::vector<at::Tensor> mine;
    for (const auto& t : tensors) mine.push_back(t.detach().clone());
    const auto all = exchange(std::move(mine));
    for (size_t i = 0; i < tensors.size(); ++i) {
      at::Tensor acc = all[0][i];
      for (int r = 1; r < g_->world; ++r) acc = op(acc, all[r][i]);
      torch::NoGradGuard no_grad;
      tensors[i].copy_(acc);
    }
  }
  std::shared_ptr<Group> g_;
  int rank_;
};

struct AllGatherFn : torch::autograd::Function<AllGatherFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            Collective* c) {
    ctx->saved_data["c"] = reinterpret_cast<int64_t>(c);
    // Where this rank's rows sit in the gathered tensor.
    auto sizes = c->allGather(torch::full({1}, x.size(0), torch::kLong));
    int64_t begin = 0;
    for (int r = 0; r < c->rank(); ++r) begin += sizes[r].item<int64_t>();
    ctx->saved_data["begin"] = begin;
    ctx->saved_data["n"] = x.size(0);
    return c->allGather(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* c = reinterpret_cast<Collective*>(ctx->saved_data["c"].toInt());
    std::vector<at::Tensor> g{grads[0].contiguous().clone()};
    c->allReduceSum(g);
    return {g[0].narrow(0, ctx->saved_data["begin"].toInt(), ctx->saved_data["n"].toInt()),
            at::Tensor()};
  }
};

struct AllReduceSumFn : torch::autograd::Function<AllReduceSumFn> {
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& x, Collective* c) {
    std::vector<at::Tensor> v{x.detach().clone()};
    c->allReduceSum(v);
    return v[0];
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::variable_list grads) {
    return {grads[0], at::Tensor()};
  }
};

}  // namespace

std::function<void()> Collective::allReduceSumAsync(std::vector<at::Tensor>& tensors) {
  allReduceSum(tensors);
  return [] {};
}

std::shared_ptr<Collective> singleProcess() {
  return std::make_shared<Single>();
}

std::vector<std::shared_ptr<Collective>> threadGroup(int world) {
  if (world < 1) throw Error("threadGroup: world size must be at least 1");
  auto g = std::make_shared<Group>(world);
  std::vector<std::shared_ptr<Collective>> out;
  for (int r = 0; r < world; ++r) out.push_back(std::make_shared<Threaded>(g, r));
  return out;
}

at::Tensor allGatherAutograd(Collective& c, const at::Tensor& tensor) {
  if (c.worldSize() == 1) return tensor;
  return AllGatherFn::apply(tensor, &c);
}

at::Tensor allReduceSumAutograd(Collective& c, const at::Tensor& tensor) {
  if (c.worldSize() == 1) return tensor;
  return AllReduceSumFn::apply(tensor, &c);
}

std::pair<int64_t, int64_t> classShard(int64_t classes, int rank, int world) {
  const int64_t base = classes / world, extra = classes % world;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

}  // namespace msconv::train
