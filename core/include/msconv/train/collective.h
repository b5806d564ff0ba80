// The collective operations data-parallel training needs, behind one interface, so that the
// training step is written once for one process and for many: c10d (Gloo on CPU, NCCL on GPU)
// plugs in as another implementation. Every rank calls each operation in the same order.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
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
  // Starts summing `tensors` over ranks, in place, and returns the function that waits for the
  // sum. Every rank starts the same sums in the same order. By default the sum happens now.
  virtual std::function<void()> allReduceSumAsync(std::vector<at::Tensor>& tensors);
  // After work only rank 0 does (validation): rank 0 calls it when done, the others wait here as
  // long as rank 0 lives and answers, however long the work takes.
  virtual void waitForRankZero() {}
  // Ranks of this group running on this machine (for sharing its cores between them) and this
  // rank's place among them (its GPU: cuda:LOCAL_RANK).
  virtual int localWorldSize() const { return 1; }
  virtual int localRank() const { return 0; }
  // Seconds this rank has spent blocked in collective operations: the exposed communication.
  virtual double blockedSeconds() const { return 0; }
  // This rank failed (`why`): ranks of this process waiting in an operation throw instead of
  // waiting for it forever. Other processes notice by themselves (the connection drops).
  virtual void abort(const std::string& why) {}
};

// How N processes find each other: torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
struct ProcessGroupOptions {
  int rank = 0, world = 1, local_rank = 0, local_world = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // A rank that has died or stopped answering stops the others after this long.
  double timeout_s = 60;
  // CUDA tensors through NCCL where LibTorch has it (else Gloo, through host memory).
  bool cuda = false;
};

// The launch this process is part of, read from the environment: nullopt when WORLD_SIZE is
// unset. Throws msconv::Error naming the variable for a malformed or inconsistent value.
std::optional<ProcessGroupOptions> launchFromEnvironment();

// For a launcher of local ranks (msconv train --nproc, the workbench): a free TCP port on the
// loopback interface for the rendezvous, and this process's environment with torchrun's
// variables set for rank `rank` of `world` (any inherited ones replaced; MSCONV_THREADS too when
// `threads` > 0). Throws msconv::Error when no port can be had.
int freeLoopbackPort();
std::vector<std::string> rankEnvironment(int rank, int world, int port, int threads = 0);

// Joins the group over c10d: a TCPStore rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 serves
// it) and a ProcessGroupGloo. Blocks until every rank has joined. Throws msconv::Error with one
// line for a port in use, an unreachable master, a mismatched WORLD_SIZE or a rank that does not
// come within the timeout. A failed operation later throws msconv::Error naming the rank that
// died or stopped answering.
std::shared_ptr<Collective> processGroup(const ProcessGroupOptions& options);

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
