// Collective over LibTorch's c10d: a TCPStore rendezvous (rank 0 serves it) and a
// ProcessGroupGloo, the backend torch.distributed uses for CPU tensors; with a LibTorch built with
// NCCL (USE_C10D_NCCL) and a CUDA run, CUDA tensors go through a ProcessGroupNCCL beside it (as
// torch.distributed's "cpu:gloo,cuda:nccl"), otherwise Gloo moves them through host memory. Each
// rank keeps a heartbeat counter in the store so that a failed operation can name the rank that
// died or stopped answering.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "msconv/error.h"
#include "msconv/train/collective.h"
#include "util/torch_error.h"

namespace msconv::train {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::vector<uint8_t> bytes(const std::string& s) {
  return {s.begin(), s.end()};
}
std::string text(const std::vector<uint8_t>& b) {
  return {b.begin(), b.end()};
}

milliseconds ms(double seconds) {
  return milliseconds(static_cast<int64_t>(seconds * 1000));
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

// The first line of an exception's message, without c10's source-location tail.
std::string reason(const std::exception& e) {
  std::string s = e.what();
  const auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  const auto at = s.find(" (Triggered internally at");
  if (at != std::string::npos) s.resize(at);
  return s;
}

class Gloo final : public Collective {
 public:
  explicit Gloo(const ProcessGroupOptions& o) : o_(o) {
    const std::string where = o.master_addr + ":" + std::to_string(o.master_port);
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(o.master_port);
    so.isServer = o.rank == 0;
    so.waitWorkers = false;
    so.timeout = ms(o.timeout_s);
    try {
      tcp_ = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
    } catch (const std::exception& e) {
      const std::string r = reason(e);
      if (o.rank == 0)
        throw Error("rank 0 cannot serve the rendezvous at MASTER_ADDR:MASTER_PORT " + where +
                    ": " + (r.find("in use") != std::string::npos ? "the port is in use" : r));
      throw Error("rank " + std::to_string(o.rank) + " cannot reach the master at " + where +
                  " within " + seconds(o.timeout_s) + " (is rank 0 running there?): " + r);
    }
    store_ = c10::make_intrusive<c10d::PrefixStore>("msconv", tcp_);
    rendezvous();
    auto opts = c10d::ProcessGroupGloo::Options::create(ms(o.timeout_s));
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (o.master_addr == "127.0.0.1" || o.master_addr == "localhost")
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    try {
      pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(
          c10::make_intrusive<c10d::PrefixStore>("gloo", tcp_), o.rank, o.world, opts);
    } catch (const std::exception& e) {
      throw Error(failure("connecting the ranks", e));
    }
#ifdef USE_C10D_NCCL
    if (o.cuda) {
      // A rank that dies or hangs makes NCCL's watchdog end the others' operations (timeout).
      ::setenv("NCCL_ASYNC_ERROR_HANDLING", "1", 0);
      auto nopts = c10d::ProcessGroupNCCL::Options::create();
      nopts->timeout = ms(o.timeout_s);
      nccl_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("nccl", tcp_), o.rank, o.world, nopts);
    }
#endif
    heartbeat_ = std::thread([this] { beat(); });
  }

  ~Gloo() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (heartbeat_.joinable()) heartbeat_.join();
  }

  int rank() const override {
    return o_.rank;
  }
  int worldSize() const override {
    return o_.world;
  }
  int localWorldSize() const override {
    return o_.local_world;
  }
  int localRank() const override {
    return o_.local_rank;
  }
  double blockedSeconds() const override {
    return blocked_;
  }

  void allReduceSum(std::vector<at::Tensor>& tensors) override {
    allReduceSumAsync(tensors)();
  }
  void allReduceMax(at::Tensor& tensor) override {
    std::vector<at::Tensor> v{tensor.detach().contiguous().clone()};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::MAX;
    wait(backend(v[0]).allreduce(v, opts), "allreduce (max)");
    torch::NoGradGuard no_grad;
    tensor.copy_(v[0]);
  }
  // Tensors of one dtype travel as one flat buffer (c10d's list means one tensor per device).
  std::function<void()> allReduceSumAsync(std::vector<at::Tensor>& tensors) override {
    std::vector<std::function<void()>> waits;
    for (auto& part : flatten(tensors)) {
      // (no structured binding: a lambda may not capture one before C++20)
      std::vector<size_t> index = part.first;
      std::vector<at::Tensor> flat = part.second;
      auto work = backend(flat[0]).allreduce(flat);
      waits.push_back([this, work, flat, index, &tensors]() mutable {
        wait(work, "allreduce");
        unflatten(flat[0], index, tensors);
      });
    }
    return [waits]() {
      for (const auto& w : waits) w();
    };
  }
  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    for (auto& [group, flat] : flatten(tensors)) {
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      wait(backend(flat[0]).broadcast(flat, opts), "broadcast");
      unflatten(flat[0], group, tensors);
    }
  }
  at::Tensor allGather(const at::Tensor& tensor) override {
    // Sizes along dim 0 may differ: gather them, pad every part to the largest, trim after.
    std::vector<at::Tensor> n{torch::full({1}, tensor.size(0), torch::kLong)};
    std::vector<std::vector<at::Tensor>> sizes(1);
    for (int r = 0; r < o_.world; ++r) sizes[0].push_back(torch::empty({1}, torch::kLong));
    wait(pg_->allgather(sizes, n), "allgather");
    int64_t most = 0;
    for (const auto& s : sizes[0]) most = std::max(most, s.item<int64_t>());
    auto shape = tensor.sizes().vec();
    shape[0] = most;
    std::vector<at::Tensor> in{torch::zeros(shape, tensor.options())};
    in[0].narrow(0, 0, tensor.size(0)).copy_(tensor.detach());
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < o_.world; ++r) out[0].push_back(torch::empty(shape, tensor.options()));
    wait(backend(in[0]).allgather(out, in), "allgather");
    std::vector<at::Tensor> parts;
    for (int r = 0; r < o_.world; ++r)
      parts.push_back(out[0][r].narrow(0, 0, sizes[0][r].item<int64_t>()));
    return torch::cat(parts);
  }

  void waitForRankZero() override {
    const std::string key = "done/" + std::to_string(++done_seq_);
    if (o_.rank == 0) {
      store_->set(key, bytes("1"));
      return;
    }
    const auto t0 = Clock::now();
    int64_t seen = -1;
    auto last_change = Clock::now();
    while (true) {
      try {
        if (store_->check({key})) break;
        const int64_t hb = store_->add("hb/0", 0);
        if (hb != seen) seen = hb, last_change = Clock::now();
      } catch (const std::exception& e) {
        throw Error(failure("waiting for rank 0's validation", e));
      }
      if (Clock::now() - last_change > ms(o_.timeout_s))
        throw Error("rank " + std::to_string(o_.rank) +
                    ": rank 0 stopped answering (no heartbeat for " + seconds(o_.timeout_s) +
                    ") while the others waited for its validation");
      std::this_thread::sleep_for(milliseconds(50));
    }
    blocked_ += std::chrono::duration<double>(Clock::now() - t0).count();
  }

 private:
  static std::string seconds(double s) {
    char b[32];
    std::snprintf(b, sizeof b, "%g s", s);
    return b;
  }

  // Every rank checks in: the same WORLD_SIZE everywhere, no RANK twice, all ranks present.
  void rendezvous() {
    const std::string me = std::to_string(o_.rank);
    const std::string ident = hostName() + " pid " + std::to_string(::getpid());
    auto refuse = [&](const std::string& msg) {
      try {
        store_->set("abort", bytes(msg));
      } catch (const std::exception&) {
      }
      throw Error(msg);
    };
    try {
      if (o_.rank == 0) store_->set("world", bytes(std::to_string(o_.world)));
      const std::string world = text(store_->get("world"));
      if (world != std::to_string(o_.world))
        refuse("WORLD_SIZE mismatch: rank " + me + " was started with WORLD_SIZE=" +
               std::to_string(o_.world) + ", rank 0 with WORLD_SIZE=" + world);
      const auto prev = store_->compareSet("rank/" + me, {}, bytes(ident));
      if (text(prev) != ident)
        refuse("two processes claim RANK=" + me + " (" + text(prev) + " and " + ident + ")");
      store_->add("joined", 1);
      const auto t0 = Clock::now();
      while (store_->add("joined", 0) < o_.world) {
        if (store_->check({"abort"})) throw Error(text(store_->get("abort")));
        if (Clock::now() - t0 > ms(o_.timeout_s)) {
          std::string missing;
          for (int r = 0; r < o_.world; ++r)
            if (!store_->check({"rank/" + std::to_string(r)}))
              missing += (missing.empty() ? "" : ", ") + std::to_string(r);
          throw Error("rank " + me + ": rank(s) " + missing + " of WORLD_SIZE=" +
                      std::to_string(o_.world) + " did not join within " + seconds(o_.timeout_s));
        }
        std::this_thread::sleep_for(milliseconds(20));
      }
      if (store_->check({"abort"})) throw Error(text(store_->get("abort")));
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error("rank " + me + ": rendezvous at " + o_.master_addr + ":" +
                  std::to_string(o_.master_port) + " failed: " + reason(e));
    }
  }

  // A heartbeat counter per rank, on a connection of its own, once a second.
  void beat() {
    c10::intrusive_ptr<c10d::Store> s;
    try {
      c10d::TCPStoreOptions so;
      so.port = static_cast<uint16_t>(o_.master_port);
      so.waitWorkers = false;
      so.timeout = ms(o_.timeout_s);
      s = c10::make_intrusive<c10d::PrefixStore>(
          "msconv", c10::make_intrusive<c10d::TCPStore>(o_.master_addr, so));
    } catch (const std::exception&) {
      return;
    }
    const std::string key = "hb/" + std::to_string(o_.rank);
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      lock.unlock();
      try {
        s->add(key, 1);
      } catch (const std::exception&) {
        return;  // the store (rank 0) is gone; the next operation says so
      }
      lock.lock();
      cv_.wait_for(lock, milliseconds(500), [this] { return stopping_; });
    }
  }

  // Which ranks stopped beating: their counters do not move over three seconds. Rank 0 holds
  // the store, so a store that cannot be read means rank 0 is gone.
  std::string silentRanks() {
    try {
      c10d::TCPStoreOptions so;
      so.port = static_cast<uint16_t>(o_.master_port);
      so.waitWorkers = false;
      so.timeout = milliseconds(3000);
      auto s = c10::make_intrusive<c10d::PrefixStore>(
          "msconv", c10::make_intrusive<c10d::TCPStore>(o_.master_addr, so));
      std::vector<int64_t> before(o_.world);
      for (int r = 0; r < o_.world; ++r) before[r] = s->add("hb/" + std::to_string(r), 0);
      std::this_thread::sleep_for(milliseconds(3000));
      std::string silent;
      for (int r = 0; r < o_.world; ++r)
        if (r != o_.rank && s->add("hb/" + std::to_string(r), 0) == before[r])
          silent += (silent.empty() ? "" : ", ") + std::to_string(r);
      return silent;
    } catch (const std::exception&) {
      return o_.rank == 0 ? "" : "0";
    }
  }

  std::string failure(const std::string& during, const std::exception& e) {
    const std::string silent = silentRanks();
    std::string msg = "rank " + std::to_string(o_.rank) + ": ";
    if (!silent.empty())
      msg += "rank " + silent + (silent.find(',') == std::string::npos ? " has" : " have") +
             " died or stopped answering";
    else
      msg += "a collective operation failed";
    return msg + " (during " + during + ", timeout " + seconds(o_.timeout_s) + "): " + reason(e);
  }

  // Each process group orders its own operations: every rank issues the same sequence to each.
  c10d::ProcessGroup& backend(const at::Tensor& t) {
#ifdef USE_C10D_NCCL
    if (nccl_ && t.is_cuda()) return *nccl_;
#endif
    return *pg_;
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    const auto t0 = Clock::now();
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw Error(failure(what, e));
    }
    blocked_ += std::chrono::duration<double>(Clock::now() - t0).count();
  }

  // Per dtype: the indices of its tensors in `tensors` and one flat buffer holding them.
  static std::vector<std::pair<std::vector<size_t>, std::vector<at::Tensor>>> flatten(
      const std::vector<at::Tensor>& tensors) {
    std::map<int, std::vector<size_t>> index;
    std::map<int, std::vector<at::Tensor>> parts;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const int t = static_cast<int>(tensors[i].scalar_type());
      parts[t].push_back(tensors[i].detach().reshape(-1));
      index[t].push_back(i);
    }
    std::vector<std::pair<std::vector<size_t>, std::vector<at::Tensor>>> out;
    for (const auto& [t, p] : parts)
      out.push_back({index[t], {p.size() == 1 ? p[0].clone() : torch::cat(p)}});
    return out;
  }
  static void unflatten(const at::Tensor& flat, const std::vector<size_t>& group,
                        std::vector<at::Tensor>& tensors) {
    torch::NoGradGuard no_grad;
    int64_t at = 0;
    for (size_t i : group) {
      auto& t = tensors[i];
      t.copy_(flat.narrow(0, at, t.numel()).view(t.sizes()));
      at += t.numel();
    }
  }

  ProcessGroupOptions o_;
  c10::intrusive_ptr<c10d::TCPStore> tcp_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
#ifdef USE_C10D_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl_;
#endif
  double blocked_ = 0;  // written by the thread that waits (the training thread)
  int64_t done_seq_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread heartbeat_;
};

int intVar(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw Error(std::string(name) + "='" + v + "' is not an integer in [" + std::to_string(lo) +
                ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

}  // namespace

std::optional<ProcessGroupOptions> launchFromEnvironment() {
  const char* ws = std::getenv("WORLD_SIZE");
  if (!ws || !*ws) return std::nullopt;
  ProcessGroupOptions o;
  o.world = intVar("WORLD_SIZE", 1, 1, 1 << 20);
  o.rank = intVar("RANK", -1, 0, o.world - 1);
  if (o.rank < 0) throw Error("WORLD_SIZE is set but RANK is not");
  o.local_world = intVar("LOCAL_WORLD_SIZE", o.world, 1, o.world);
  o.local_rank = intVar("LOCAL_RANK", o.rank % o.local_world, 0, o.local_world - 1);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a)
    o.master_addr = a;
  else if (o.world > 1)
    throw Error("WORLD_SIZE=" + std::to_string(o.world) + " but MASTER_ADDR is not set");
  o.master_port = intVar("MASTER_PORT", -1, 1, 65535);
  if (o.master_port < 0) {
    if (o.world > 1)
      throw Error("WORLD_SIZE=" + std::to_string(o.world) + " but MASTER_PORT is not set");
    o.master_port = 29500;
  }
  return o;
}

int freeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error("cannot open a socket: " + std::string(std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    throw Error("cannot find a free loopback port for the rendezvous: " + err);
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

std::vector<std::string> rankEnvironment(int rank, int world, int port, int threads) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    bool ours = false;
    for (const char* v : {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=",
                          "MASTER_ADDR=", "MASTER_PORT="})
      ours = ours || kv.rfind(v, 0) == 0;
    if (threads > 0 && kv.rfind("MSCONV_THREADS=", 0) == 0) ours = true;
    if (!ours) env.push_back(kv);
  }
  env.insert(env.end(),
             {"RANK=" + std::to_string(rank), "WORLD_SIZE=" + std::to_string(world),
              "LOCAL_RANK=" + std::to_string(rank), "LOCAL_WORLD_SIZE=" + std::to_string(world),
              "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)});
  if (threads > 0) env.push_back("MSCONV_THREADS=" + std::to_string(threads));
  return env;
}

std::shared_ptr<Collective> processGroup(const ProcessGroupOptions& options) {
  if (options.world == 1) return singleProcess();
  return std::make_shared<Gloo>(options);
}

}  // namespace msconv::train
