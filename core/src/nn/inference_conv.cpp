#include "msconv/nn/inference_conv.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "msconv/nn/kernel_switch.h"

#ifdef MSCONV_HAVE_DNNL
#include <dnnl.hpp>
#endif

namespace msconv::nn {
namespace {
EnvSwitch g_fusion("MSCONV_FUSED_CONV");
std::atomic<int64_t> g_runs{0};
}  // namespace

int64_t inferenceConvRuns() {
  return g_runs.load();
}

bool inferenceConvCompiled() {
#ifdef MSCONV_HAVE_DNNL
  return true;
#else
  return false;
#endif
}

bool inferenceConvEnabled() {
  return inferenceConvCompiled() && customKernels() && g_fusion.on();
}

void setInferenceConvFusion(bool on) {
  g_fusion.set(on);
}

#ifdef MSCONV_HAVE_DNNL

namespace {

using dnnl::memory;

dnnl::engine& cpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A float32 tensor's dimensions and strides as oneDNN's descriptor (any strided layout).
memory::desc stridedDesc(const at::Tensor& t) {
  const memory::dims dims(t.sizes().begin(), t.sizes().end());
  const memory::dims strides(t.strides().begin(), t.strides().end());
  return memory::desc(dims, memory::data_type::f32, strides);
}

// The weight [Cout, Cin/G, kh, kw] as oneDNN sees it: grouped weights are 5-d (G, Cout/G, ...).
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

// Input N, C, H, W, its layout (1: channels-last), and the epilogue's form (residual, slope
// count, the shared slope's bits, ReLU, bias): everything the primitive depends on besides the
// module's own geometry.
using Key = std::array<int64_t, 10>;

struct Primitive {
  bool usable = false;  // false: oneDNN offers only its reference code here; compose instead
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
};

}  // namespace

struct InferenceConvState {
  std::mutex mutex;
  std::map<Key, std::shared_ptr<const Primitive>> primitives;
  // The weights in the layouts the primitives asked for, valid for one version of the tensor.
  const void* weight_data = nullptr;
  int64_t weight_version = -1;
  std::vector<std::pair<memory::desc, memory>> weights;
};

namespace {

std::shared_ptr<const Primitive> makePrimitive(const at::Tensor& x, const at::Tensor& w,
                                               const at::Tensor& b, const at::Tensor& y,
                                               const ConvGeometry& g, const at::Tensor& residual,
                                               const at::Tensor& slope, bool relu) {
  // A shared slope is oneDNN's ReLU with alpha (x > 0 ? x : alpha * x): its JIT convolutions fuse
  // that; they decline the PReLU post-op (per-channel slopes), so those compose.
  const bool shared = slope.defined() && slope.numel() == 1;
  auto p = std::make_shared<Primitive>();
  dnnl::post_ops ops;
  // The residual as the sum post-op (dst += conv): the output is first filled with it. As a
  // binary-add post-op oneDNN 2.6 runs its older 1x1 kernels, measured 2-3x slower here.
  if (residual.defined()) ops.append_sum(1.f);
  if (shared) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, slope.item<float>(), 0.f);
  if (slope.defined() && !shared) ops.append_prelu(1 << 1);
  if (relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // one scratchpad per call: reentrant
  const memory::dims strides{g.stride[0], g.stride[1]};
  const memory::dims dilates{g.dilation[0] - 1, g.dilation[1] - 1};
  const memory::dims pad{g.padding[0], g.padding[1]};
  try {
    const auto src = stridedDesc(x), dst = stridedDesc(y), wd = weightDesc(w, g.groups, true);
    const auto desc =
        b.defined() ? dnnl::convolution_forward::desc(
                          dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                          src, wd, stridedDesc(b), dst, strides, dilates, pad, pad)
                    : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                      dnnl::algorithm::convolution_direct, src, wd,
                                                      dst, strides, dilates, pad, pad);
    p->pd = dnnl::convolution_forward::primitive_desc(desc, attr, cpuEngine());
    const std::string impl = p->pd.impl_info_str();
    p->usable = impl.rfind("ref", 0) != 0;
    if (p->usable) p->conv = dnnl::convolution_forward(p->pd);
    if (kernelsLog())
      std::fprintf(stderr,
                   "[msconv kernels] fused inference conv %lldx%lldx%lldx%lld -> %lld ch, "
                   "groups %lld, residual %d, prelu %lld, relu %d: %s (%s)\n",
                   static_cast<long long>(x.size(0)), static_cast<long long>(x.size(1)),
                   static_cast<long long>(x.size(2)), static_cast<long long>(x.size(3)),
                   static_cast<long long>(w.size(0)), static_cast<long long>(g.groups),
                   residual.defined() ? 1 : 0,
                   static_cast<long long>(slope.defined() ? slope.numel() : 0), relu ? 1 : 0,
                   impl.c_str(), p->usable ? "fused" : "composed");
  } catch (const dnnl::error& e) {
    p->usable = false;
    if (kernelsLog())
      std::fprintf(stderr,
                   "[msconv kernels] fused inference conv: oneDNN declined (%s): composed\n",
                   e.what());
  }
  return p;
}

// The weights in the primitive's layout: reordered once per layout and version of the tensor.
memory weightsFor(InferenceConvState& s, const Primitive& p, const at::Tensor& w, int64_t groups) {
  // An inference tensor keeps no version counter (and cannot be changed outside InferenceMode):
  // its data pointer alone identifies it.
  const auto version = w.is_inference() ? int64_t{0} : static_cast<int64_t>(w._version());
  if (s.weight_data != w.data_ptr() || s.weight_version != version) {
    s.weights.clear();
    s.weight_data = w.data_ptr();
    s.weight_version = version;
  }
  const auto want = p.pd.weights_desc();
  for (const auto& [desc, mem] : s.weights)
    if (desc == want) return mem;
  memory user(weightDesc(w, groups, false), cpuEngine(), w.data_ptr());
  memory mine(want, cpuEngine());
  dnnl::stream stream(cpuEngine());
  dnnl::reorder(user, mine).execute(stream, user, mine);
  stream.wait();
  s.weights.emplace_back(want, mine);
  return mine;
}

// The shared slope's float, as bits (it is baked into the primitive).
int64_t sharedSlopeBits(const at::Tensor& slope) {
  const float v = slope.item<float>();
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

bool floatCpu(const at::Tensor& t) {
  return t.defined() && t.scalar_type() == at::kFloat && t.device().is_cpu() &&
         t.layout() == at::kStrided;
}

}  // namespace

at::Tensor inferenceConv(std::shared_ptr<InferenceConvState>& state, const at::Tensor& x,
                         const at::Tensor& weight, const at::Tensor& bias, const ConvGeometry& g,
                         const ConvEpilogue& e) {
  if (!inferenceConvEnabled()) return {};
  RECORD_FUNCTION("msconv::fused_conv", std::vector<c10::IValue>());  // for the profiler
  const bool wants_grad =
      c10::GradMode::is_enabled() &&
      (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()) ||
       (e.residual.defined() && e.residual.requires_grad()) ||
       (e.slope.defined() && e.slope.requires_grad()));
  if (wants_grad || !floatCpu(x) || !floatCpu(weight) || x.dim() != 4 || weight.dim() != 4 ||
      x.numel() == 0 || g.groups < 1 || weight.size(0) % g.groups != 0 ||
      x.size(1) != weight.size(1) * g.groups)
    return {};
  const int64_t cout = weight.size(0);
  if (bias.defined() && (!floatCpu(bias) || bias.dim() != 1 || bias.size(0) != cout)) return {};
  if (e.slope.defined() &&
      (!floatCpu(e.slope) || (e.slope.numel() != 1 && e.slope.numel() != cout) || e.relu))
    return {};
  const auto format = x.suggest_memory_format();
  if (!x.is_contiguous(format)) return {};
  int64_t out_hw[2];
  for (int d = 0; d < 2; ++d) {
    const int64_t span = g.dilation[d] * (weight.size(2 + d) - 1) + 1;
    out_hw[d] = (x.size(2 + d) + 2 * g.padding[d] - span) / g.stride[d] + 1;
    if (x.size(2 + d) + 2 * g.padding[d] < span || g.stride[d] < 1 || g.dilation[d] < 1) return {};
  }
  const std::vector<int64_t> out_sizes{x.size(0), cout, out_hw[0], out_hw[1]};
  at::Tensor residual;
  if (e.residual.defined()) {
    if (!floatCpu(e.residual) || e.residual.sizes() != at::IntArrayRef(out_sizes)) return {};
    residual = e.residual.contiguous(format);
  }
  const at::Tensor w =
      weight.is_contiguous() || weight.is_contiguous(at::MemoryFormat::ChannelsLast)
          ? weight
          : weight.contiguous();
  const at::Tensor b = bias.defined() ? bias.contiguous() : bias;
  const at::Tensor slope = e.slope.defined() ? e.slope.contiguous() : e.slope;
  // The output: the residual itself where the caller gave it up (no copy), else a new tensor the
  // residual is copied into (the sum post-op adds the convolution to what the output holds).
  const bool reuse = residual.defined() && e.residual_writable && residual.is_same(e.residual) &&
                     !residual.is_alias_of(x);
  at::Tensor y = reuse ? residual : at::empty(out_sizes, x.options().memory_format(format));

  if (!state) state = std::make_shared<InferenceConvState>();
  const Key key{x.size(0),
                x.size(1),
                x.size(2),
                x.size(3),
                format == at::MemoryFormat::ChannelsLast ? 1 : 0,
                residual.defined() ? 1 : 0,
                slope.defined() ? slope.numel() : 0,
                slope.defined() && slope.numel() == 1 ? sharedSlopeBits(slope) : 0,
                e.relu ? 1 : 0,
                b.defined() ? 1 : 0};
  std::shared_ptr<const Primitive> p;
  memory wmem;
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    auto& slot = state->primitives[key];
    if (!slot) slot = makePrimitive(x, w, b, y, g, residual, slope, e.relu);
    p = slot;
    if (!p->usable) return {};
    wmem = weightsFor(*state, *p, w, g.groups);
  }
  auto& engine = cpuEngine();
  const auto scratch_desc = p->pd.scratchpad_desc();
  at::Tensor scratch =
      at::empty({static_cast<int64_t>(scratch_desc.get_size())}, x.options().dtype(at::kByte));
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, memory(p->pd.src_desc(), engine, x.data_ptr())},
      {DNNL_ARG_WEIGHTS, wmem},
      {DNNL_ARG_DST, memory(p->pd.dst_desc(), engine, y.data_ptr())},
      {DNNL_ARG_SCRATCHPAD, memory(scratch_desc, engine, scratch.data_ptr())}};
  if (b.defined()) args.emplace(DNNL_ARG_BIAS, memory(p->pd.bias_desc(), engine, b.data_ptr()));
  const int index = residual.defined() ? 1 : 0;
  if (residual.defined() && !reuse) y.copy_(residual);
  if (slope.defined() && slope.numel() != 1) {
    const memory::dims dims{1, cout, 1, 1};
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_WEIGHTS,
                 memory(memory::desc(dims, memory::data_type::f32, memory::format_tag::acdb),
                        engine, slope.data_ptr()));
  }
  dnnl::stream stream(engine);
  p->conv.execute(stream, args);
  stream.wait();
  g_runs.fetch_add(1);
  return y;
}

#else

struct InferenceConvState {};

at::Tensor inferenceConv(std::shared_ptr<InferenceConvState>&, const at::Tensor&, const at::Tensor&,
                         const at::Tensor&, const ConvGeometry&, const ConvEpilogue&) {
  return {};
}

#endif

}  // namespace msconv::nn
