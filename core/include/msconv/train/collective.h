// The collective operations data-parallel training needs, behind one interface, so that the
// training step is written once for one process and for many: c10d (Gloo on CPU, NCCL on GPU)
// plugs in as another implementation. Every rank calls each operation in the same order.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

namespace msconv::train {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int worldSize() const = 0;
  // In place: every tensor becomes the element-wise sum (max) over ranks.
  virtual void allReduceSum(std::vector<at::Tensor>& tensors) = 0;
  virtual void allReduceMax(at::Tensor& tensor) = 0;
  // In place: every tensor becomes rank `root`'s.
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root = 0) = 0;
  // Every rank's tensor concatenated along dim 0, in rank order (sizes may differ along dim 0).
  virtual at::Tensor allGather(const at::Tensor& tensor) = 0;
};

// One process: every operation is the identity.
std::shared_ptr<Collective> singleProcess();

// `world` ranks inside this process, one per thread (rank i is element i); for tests of the
// sharded code paths and for multi-threaded simulation. Operations block until every rank calls.
std::vector<std::shared_ptr<Collective>> threadGroup(int world);

// Differentiable collectives for the sharded head. allGatherAutograd's backward sums the
// gradient over ranks and returns this rank's slice; allReduceSumAutograd's backward is the
// identity (every rank computes the same replicated loss from the sum).
at::Tensor allGatherAutograd(Collective& c, const at::Tensor& tensor);
at::Tensor allReduceSumAutograd(Collective& c, const at::Tensor& tensor);

// Classes [begin, end) owned by `rank` when `classes` are split as evenly as possible.
std::pair<int64_t, int64_t> classShard(int64_t classes, int rank, int world);

}  // namespace msconv::train
