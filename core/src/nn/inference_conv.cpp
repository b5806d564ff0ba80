#include "msconv/nn/inference_conv.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>
#include <dnnl.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "msconv/error.h"
#include "msconv/nn/kernel_switch.h"

namespace msconv::nn {
namespace {

EnvSwitch g_fusion("MSCONV_FUSED_CONV");
std::atomic<int64_t> g_runs{0};

using dnnl::memory;

dnnl::engine& cpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A 4-d float32 activation of these sizes, NCHW or channels-last (the layout, not the strides the
// caller's tensor happens to have in its size-1 dimensions, describes it).
memory::desc activationDesc(at::IntArrayRef sizes, bool channels_last) {
  const memory::dims dims(sizes.begin(), sizes.end());
  return memory::desc(dims, memory::data_type::f32,
                      channels_last ? memory::format_tag::nhwc : memory::format_tag::nchw);
}

// The weight [Cout, Cin/G, kh, kw] as oneDNN sees it: grouped weights are 5-d (G, Cout/G, ...);
// `any` lets the primitive choose its layout, else the tensor's own strides.
memory::desc weightDesc(const at::Tensor& w, int64_t groups, bool any) {
  memory::dims dims(w.sizes().begin(), w.sizes().end());
  memory::dims strides(w.strides().begin(), w.strides().end());
  if (groups > 1) {
    dims[0] /= groups;
    dims.insert(dims.begin(), groups);
    strides.insert(strides.begin(), strides[0] * dims[1]);
  }
  if (any) return memory::desc(dims, memory::data_type::f32, memory::format_tag::any);
  return memory::desc(dims, memory::data_type::f32, strides);
}

// Input N, C, H, W, its layout (1: channels-last), and the epilogue's form (residual, the shared
// slope's bits or -1 for none, ReLU, bias): everything the primitive depends on besides the
// module's own geometry.
using Key = std::array<int64_t, 9>;

struct Primitive {
  bool usable = false;  // false: oneDNN offers only its reference code here; compose instead
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
};

// The shared slope's float, as bits (it is baked into the primitive).
int64_t slopeBits(const at::Tensor& slope) {
  const float v = slope.item<float>();
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

}  // namespace

struct InferenceConvState {
  std::mutex mutex;
  std::map<Key, std::shared_ptr<const Primitive>> primitives;
  // The weights in the layouts the primitives asked for, valid for one storage, offset and version
  // of the weight tensor; the storage is held, so its address cannot be reused meanwhile.
  c10::Storage weight_storage;
  const void* weight_data = nullptr;
  int64_t weight_version = -1;
  std::vector<std::pair<memory::desc, memory>> weights;
};

namespace {

std::shared_ptr<const Primitive> makePrimitive(const at::Tensor& x, const at::Tensor& w,
                                               const at::Tensor& b, at::IntArrayRef out_sizes,
                                               bool channels_last, const ConvGeometry& g,
                                               bool residual, const at::Tensor& slope, bool relu) {
  auto p = std::make_shared<Primitive>();
  dnnl::post_ops ops;
  // The residual as the sum post-op (dst += conv): the output holds it before the call. As a
  // binary-add post-op oneDNN 2.6 runs its older 1x1 kernels, measured 2-3x slower here.
  if (residual) ops.append_sum(1.f);
  // A shared PReLU slope is oneDNN's ReLU with alpha (x > 0 ? x : alpha * x).
  if (slope.defined())
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, slope.item<float>(), 0.f);
  if (relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // one scratchpad per call: reentrant
  const memory::dims strides{g.stride[0], g.stride[1]};
  const memory::dims dilates{g.dilation[0] - 1, g.dilation[1] - 1};
  const memory::dims pad{g.padding[0], g.padding[1]};
  std::string impl = "none";
  try {
    const auto src = activationDesc(x.sizes(), channels_last);
    const auto dst = activationDesc(out_sizes, channels_last);
    const auto wd = weightDesc(w, g.groups, true);
    const auto kind = dnnl::prop_kind::forward_inference;
    const auto alg = dnnl::algorithm::convolution_direct;
    const auto desc =
        b.defined()
            ? dnnl::convolution_forward::desc(
                  kind, alg, src, wd, memory::desc({b.size(0)}, memory::data_type::f32, {1}), dst,
                  strides, dilates, pad, pad)
            : dnnl::convolution_forward::desc(kind, alg, src, wd, dst, strides, dilates, pad, pad);
    p->pd = dnnl::convolution_forward::primitive_desc(desc, attr, cpuEngine());
    impl = p->pd.impl_info_str();
    p->usable = impl.rfind("ref", 0) != 0;
    if (p->usable) p->conv = dnnl::convolution_forward(p->pd);
  } catch (const dnnl::error& e) {
    p->usable = false;
    impl = std::string("declined: ") + e.what();
  }
  if (kernelsLog())
    std::fprintf(stderr,
                 "[msconv kernels] fused inference conv %lldx%lldx%lldx%lld -> %lld ch, groups "
                 "%lld, residual %d, prelu %d, relu %d: %s (%s)\n",
                 static_cast<long long>(x.size(0)), static_cast<long long>(x.size(1)),
                 static_cast<long long>(x.size(2)), static_cast<long long>(x.size(3)),
                 static_cast<long long>(w.size(0)), static_cast<long long>(g.groups),
                 residual ? 1 : 0, slope.defined() ? 1 : 0, relu ? 1 : 0, impl.c_str(),
                 p->usable ? "fused" : "composed");
  return p;
}

// The weights in the primitive's layout: reordered once per layout and version of the tensor.
// (Changes that bypass the tensor's version counter, through .data() or a raw pointer, are not
// seen; an inference tensor has no counter, so its weights are reordered at every call.)
memory weightsFor(InferenceConvState& s, const Primitive& p, const at::Tensor& weight,
                  int64_t groups) {
  const bool cacheable = !weight.is_inference();
  const auto version = cacheable ? static_cast<int64_t>(weight._version()) : int64_t{-2};
  if (!cacheable || !s.weight_storage.unsafeGetStorageImpl() ||
      s.weight_storage.unsafeGetStorageImpl() != weight.storage().unsafeGetStorageImpl() ||
      s.weight_data != weight.data_ptr() || s.weight_version != version) {
    s.weights.clear();
    s.weight_storage = cacheable ? weight.storage() : c10::Storage();
    s.weight_data = weight.data_ptr();
    s.weight_version = version;
  }
  const auto want = p.pd.weights_desc();
  for (const auto& [desc, mem] : s.weights)
    if (desc == want) return mem;
  const at::Tensor w =
      weight.is_contiguous() || weight.is_contiguous(at::MemoryFormat::ChannelsLast)
          ? weight
          : weight.contiguous();
  memory user(weightDesc(w, groups, false), cpuEngine(), w.data_ptr());
  memory mine(want, cpuEngine());
  dnnl::stream stream(cpuEngine());
  dnnl::reorder(user, mine).execute(stream, user, mine);
  stream.wait();
  if (cacheable) s.weights.emplace_back(want, mine);
  return mine;
}

bool floatCpu(const at::Tensor& t) {
  return t.defined() && t.scalar_type() == at::kFloat && t.device().is_cpu() &&
         t.layout() == at::kStrided;
}

bool wantsGrad(const at::Tensor& t) {
  return t.defined() && t.requires_grad();
}

// The module's state, created on first use; the creation is shared by the threads that race to it.
std::shared_ptr<InferenceConvState> stateOf(std::shared_ptr<InferenceConvState>& slot) {
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);
  if (!slot) slot = std::make_shared<InferenceConvState>();
  return slot;
}

}  // namespace

bool inferenceConvEnabled() {
  return customKernels() && g_fusion.on();
}

void setInferenceConvFusion(bool on) {
  g_fusion.set(on);
}

int64_t inferenceConvRuns() {
  return g_runs.load();
}

at::Tensor inferenceConv(std::shared_ptr<InferenceConvState>& slot, const at::Tensor& x,
                         const at::Tensor& weight, const at::Tensor& bias, const ConvGeometry& g,
                         const ConvEpilogue& e) {
  if (!inferenceConvEnabled()) return {};
  RECORD_FUNCTION("msconv::fused_conv", std::vector<c10::IValue>());  // for the profiler
  const bool grad_mode = c10::GradMode::is_enabled();
  if (grad_mode && (wantsGrad(x) || wantsGrad(weight) || wantsGrad(bias) || wantsGrad(e.residual) ||
                    wantsGrad(e.slope)))
    return {};
  if (!floatCpu(x) || !floatCpu(weight) || x.dim() != 4 || weight.dim() != 4 || x.numel() == 0 ||
      g.groups < 1 || weight.size(0) % g.groups != 0 || x.size(1) != weight.size(1) * g.groups)
    return {};
  const int64_t cout = weight.size(0);
  if (bias.defined() && (!floatCpu(bias) || bias.dim() != 1 || bias.size(0) != cout)) return {};
  // One shared slope only (a slope per channel is applied after the call, by the caller).
  if (e.slope.defined() && (!floatCpu(e.slope) || e.slope.numel() != 1 || e.relu)) return {};
  const auto format = x.suggest_memory_format();
  if (!x.is_contiguous(format)) return {};
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  int64_t out_hw[2];
  for (int d = 0; d < 2; ++d) {
    if (g.stride[d] < 1 || g.dilation[d] < 1 || g.padding[d] < 0) return {};
    const int64_t span = g.dilation[d] * (weight.size(2 + d) - 1) + 1;
    if (x.size(2 + d) + 2 * g.padding[d] < span) return {};
    out_hw[d] = (x.size(2 + d) + 2 * g.padding[d] - span) / g.stride[d] + 1;
  }
  const std::vector<int64_t> out_sizes{x.size(0), cout, out_hw[0], out_hw[1]};
  at::Tensor residual;
  if (e.residual.defined()) {
    if (!floatCpu(e.residual) || e.residual.sizes() != at::IntArrayRef(out_sizes)) return {};
    residual = e.residual.contiguous(format);
  }
  const at::Tensor b = bias.defined() ? bias.contiguous() : bias;

  const auto state = stateOf(slot);
  const Key key{x.size(0),
                x.size(1),
                x.size(2),
                x.size(3),
                channels_last ? 1 : 0,
                residual.defined() ? 1 : 0,
                e.slope.defined() ? slopeBits(e.slope) : int64_t{-1},
                e.relu ? 1 : 0,
                b.defined() ? 1 : 0};
  try {
    std::shared_ptr<const Primitive> p;
    memory wmem;
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      auto& cached = state->primitives[key];
      if (!cached)
        cached = makePrimitive(x, weight, b, out_sizes, channels_last, g, residual.defined(),
                               e.slope, e.relu);
      p = cached;
      if (!p->usable) return {};
      wmem = weightsFor(*state, *p, weight, g.groups);
    }
    // The output: the residual itself where the caller gave it up and nothing can read it later
    // (no autograd graph: grad mode off), else a new tensor the residual is copied into; the sum
    // post-op adds the convolution to what the output holds.
    const bool reuse = residual.defined() && e.residual_writable && !grad_mode &&
                       residual.is_same(e.residual) && !residual.is_alias_of(x);
    at::Tensor y = reuse ? residual : at::empty(out_sizes, x.options().memory_format(format));
    if (residual.defined() && !reuse) y.copy_(residual);
    if (reuse && !y.is_inference()) y.unsafeGetTensorImpl()->bump_version();
    auto& engine = cpuEngine();
    const auto scratch_desc = p->pd.scratchpad_desc();
    const at::Tensor scratch =
        at::empty({static_cast<int64_t>(scratch_desc.get_size())}, x.options().dtype(at::kByte));
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory(p->pd.src_desc(), engine, x.data_ptr())},
        {DNNL_ARG_WEIGHTS, wmem},
        {DNNL_ARG_DST, memory(p->pd.dst_desc(), engine, y.data_ptr())},
        {DNNL_ARG_SCRATCHPAD, memory(scratch_desc, engine, scratch.data_ptr())}};
    if (b.defined()) args.emplace(DNNL_ARG_BIAS, memory(p->pd.bias_desc(), engine, b.data_ptr()));
    dnnl::stream stream(engine);
    p->conv.execute(stream, args);
    stream.wait();
    g_runs.fetch_add(1);
    return y;
  } catch (const dnnl::error& err) {
    throw Error(std::string("fused inference convolution of a ") + std::to_string(x.size(1)) +
                "-channel " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) +
                " input: oneDNN failed: " + err.what());
  }
}

}  // namespace msconv::nn
