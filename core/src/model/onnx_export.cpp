// ONNX out: LibTorch's trace of a backbone, translated operator by operator into ONNX with the
// ONNX library's own protobuf classes (onnx/onnx_pb.h, libonnx-dev).
#include "msconv/model/onnx.h"

#include <onnx/onnx_pb.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "msconv/atomic_file.h"
#include "msconv/error.h"
#include "msconv/nn/tap.h"

namespace msconv::model {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// ONNX's IR version for an opset (onnx/helper.py's VERSION_TABLE).
int irVersionFor(int opset) {
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  return 8;
}

class Translator {
 public:
  Translator(onnx::GraphProto* graph, int opset,
             std::unordered_map<const void*, std::string> params,
             std::unordered_map<const Value*, std::string> names, int64_t batch, bool dynamic)
      : g_(graph),
        opset_(opset),
        param_names_(std::move(params)),
        names_(std::move(names)),
        batch_(batch),
        dynamic_(dynamic) {}

  void run(torch::jit::Graph& graph) {
    for (Node* n : graph.nodes()) translate(n);
  }
  std::string nameOf(const Value* v) { return tensor(v); }
  int64_t nodes() const { return g_->node_size(); }
  int64_t parameters() const { return floats_; }
  std::set<std::string> opTypes() const {
    std::set<std::string> s;
    for (const auto& n : g_->node()) s.insert(n.op_type());
    return s;
  }

 private:
  [[noreturn]] void unsupported(const Node* n, const std::string& why) {
    throw Error("ONNX export: " + std::string(n->kind().toQualString()) + " " + why);
  }

  std::string fresh(const std::string& hint) { return hint + "_" + std::to_string(++counter_); }

  // The name of a value: an earlier node's output, a graph input, or a constant tensor as an
  // initialiser (named after the model's parameter or buffer when it is one).
  std::string tensor(const Value* v) {
    auto it = names_.find(v);
    if (it != names_.end()) return it->second;
    auto c = constOf(v);
    if (c && c->isTensor()) return initializer(c->toTensor(), hintOf(v));
    if (c && (c->isDouble() || c->isInt() || c->isBool()))
      return scalarF(static_cast<float>(c->toScalar().toDouble()));
    throw Error("ONNX export: value %" + v->debugName() + " of " +
                std::string(v->node()->kind().toQualString()) + " has no ONNX name");
  }

  std::string initializer(const at::Tensor& t0, const std::string& hint) {
    const void* key = t0.data_ptr();
    auto named = param_names_.find(key);
    if (named != param_names_.end()) {
      auto done = emitted_.find(key);
      if (done != emitted_.end() && done->second.second == t0.sizes().vec())
        return done->second.first;
    }
    const at::Tensor t = t0.detach().contiguous().cpu();
    auto* init = g_->add_initializer();
    std::string name =
        named != param_names_.end() && !emitted_.count(key) ? named->second : fresh(hint);
    init->set_name(name);
    for (int64_t d : t.sizes()) init->add_dims(d);
    if (t.scalar_type() == at::kFloat) {
      init->set_data_type(onnx::TensorProto::FLOAT);
      floats_ += t.numel();
    } else if (t.scalar_type() == at::kLong) {
      init->set_data_type(onnx::TensorProto::INT64);
    } else {
      throw Error("ONNX export: a constant tensor of type " +
                  std::string(c10::toString(t.scalar_type())) + " (float or int64 expected)");
    }
    init->set_raw_data(t.data_ptr(), static_cast<size_t>(t.nbytes()));
    if (named != param_names_.end() && !emitted_.count(key))
      emitted_.emplace(key, std::make_pair(name, t0.sizes().vec()));
    return name;
  }

  std::string ints(const std::vector<int64_t>& v, const std::string& hint = "shape") {
    return initializer(torch::tensor(v, torch::kLong), hint);
  }
  std::string scalarF(float v) { return initializer(torch::full({1}, v), "scalar"); }
  std::string scalar0F(float v) { return initializer(torch::full({}, v), "scalar"); }

  onnx::NodeProto* node(const std::string& type, const std::vector<std::string>& in,
                        const std::vector<std::string>& out) {
    auto* n = g_->add_node();
    n->set_op_type(type);
    n->set_name(out.empty() ? fresh(type) : out[0]);
    for (const auto& i : in) n->add_input(i);
    for (const auto& o : out) n->add_output(o);
    return n;
  }
  static void attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, const std::string& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  // The output's name: its tap name when the model named it, else a fresh one.
  std::string out(const Value* v, const std::string& type) {
    auto it = names_.find(v);
    if (it != names_.end()) return it->second;
    std::string name = fresh(type);
    names_[v] = name;
    return name;
  }
  void alias(const Value* v, const std::string& name) {
    auto it = names_.find(v);
    if (it == names_.end()) {
      names_[v] = name;
      return;
    }
    if (it->second != name) node("Identity", {name}, {it->second});  // keep the tap's name
  }

  // A constant: one LibTorch recorded, or the result of a layout operator on constants (a weight
  // reshaped or transposed in forward), computed here once: exact, and what ONNX readers expect
  // of a weight (OpenCV's reads a Gemm's B only as an initialiser).
  c10::optional<c10::IValue> constOf(const Value* v) {
    auto it = consts_.find(v);
    if (it != consts_.end()) return it->second;
    if (v->node()->kind() == c10::prim::ListConstruct) {  // a list of constant integers
      c10::List<int64_t> list;
      for (const Value* e : v->node()->inputs()) {
        auto c = torch::jit::toIValue(e);
        if (!c || !c->isInt()) return c10::nullopt;
        list.push_back(c->toInt());
      }
      return c10::IValue(list);
    }
    return torch::jit::toIValue(v);
  }
  std::string hintOf(const Value* v) {
    auto it = hints_.find(v);
    return it != hints_.end() ? it->second : "const";
  }
  // Any operator of constants only (a weight reshaped, transposed, or normalised by its own sum
  // as SCConv's gate does) is computed here by LibTorch itself, the numbers forward computes.
  bool fold(Node* n, const std::string& k) {
    if (k.rfind("aten::", 0) != 0 || n->outputs().size() != 1 || n->inputs().empty()) return false;
    if (k.find("rand") != std::string::npos || k.find("dropout") != std::string::npos) return false;
    torch::jit::Stack stack;
    for (const Value* v : n->inputs()) {
      auto c = constOf(v);
      if (!c) return false;
      stack.push_back(*c);
    }
    if (!stack.at(0).isTensor()) return false;
    n->getOperation()(stack);
    if (!stack.back().isTensor()) return false;
    consts_[n->output()] = stack.back().toTensor().contiguous().clone();  // its own storage
    // Named after the parameter it came from: "stage1.0.op.fc.0.weight.reshaped".
    const Value* src = n->input(0);
    std::string base = hintOf(src);
    if (auto c = torch::jit::toIValue(src); c && c->isTensor()) {
      auto p = param_names_.find(c->toTensor().data_ptr());
      if (p != param_names_.end()) base = p->second;
    }
    hints_[n->output()] = base + "." + k.substr(6);
    return true;
  }

  c10::IValue constant(const Node* n, size_t i) {
    auto c = torch::jit::toIValue(n->input(i));
    if (!c) unsupported(n, "with a non-constant argument " + std::to_string(i));
    return *c;
  }
  bool isNone(const Node* n, size_t i) {
    return n->input(i)->type()->kind() == c10::TypeKind::NoneType;
  }
  int64_t intArg(const Node* n, size_t i) { return constant(n, i).toInt(); }
  double doubleArg(const Node* n, size_t i) { return constant(n, i).toScalar().toDouble(); }
  bool boolArg(const Node* n, size_t i) { return constant(n, i).toBool(); }
  std::vector<int64_t> intList(const Node* n, size_t i) {
    const Value* v = n->input(i);
    if (auto c = torch::jit::toIValue(v)) {
      if (c->isIntList()) return c->toIntVector();
      if (c->isInt()) return {c->toInt()};
    }
    if (v->node()->kind() == c10::prim::ListConstruct) {
      std::vector<int64_t> out;
      for (const Value* e : v->node()->inputs()) {
        auto c = torch::jit::toIValue(e);
        if (!c || !c->isInt()) unsupported(n, "with a list argument computed at run time");
        out.push_back(c->toInt());
      }
      return out;
    }
    unsupported(n, "with a list argument computed at run time");
  }
  // A 2-d window argument LibTorch accepts as one number for both axes.
  static std::vector<int64_t> pair(std::vector<int64_t> v) {
    if (v.size() == 1) v.push_back(v[0]);
    return v;
  }
  std::vector<int64_t> sizesOf(const Value* v) {
    auto t = v->type()->cast<c10::TensorType>();
    if (t) {
      if (auto s = t->sizes().concrete_sizes()) return *s;
    }
    throw Error("ONNX export: the shape of %" + v->debugName() + " was not recorded");
  }
  int64_t rankOf(const Value* v) { return static_cast<int64_t>(sizesOf(v).size()); }
  static int64_t wrap(int64_t dim, int64_t rank) { return dim < 0 ? dim + rank : dim; }
  // The "tensor or number" operand of an arithmetic operator.
  std::string operand(const Node* n, size_t i) {
    const Value* v = n->input(i);
    if (v->type()->cast<c10::TensorType>() || names_.count(v)) return tensor(v);
    return scalarF(static_cast<float>(doubleArg(n, i)));
  }

  // A reshape target. With a dynamic batch the traced batch size (3, a size no layer has) marks
  // the batch axis wherever it moved (SKConv stacks its branches in front of it): that entry
  // becomes -1 (inferred), or 0 (copied from the input) when the shape already has a -1.
  std::string shapeFor(std::vector<int64_t> shape, const Value* input) {
    if (!dynamic_) return ints(shape);
    auto it = std::find(shape.begin(), shape.end(), batch_);
    if (it != shape.end()) {
      const auto in = sizesOf(input);
      if (std::count(shape.begin(), shape.end(), -1) == 0) {
        *it = -1;
      } else if (it == shape.begin() && !in.empty() && in[0] == batch_) {
        *it = 0;
      } else {
        throw Error(
            "ONNX export: a reshape whose batch axis cannot be left open "
            "(export without --dynamic-batch)");
      }
    }
    return ints(shape);
  }

  // Squeeze and Unsqueeze as a Reshape to the shape LibTorch recorded (their axes moved from an
  // attribute to an input at opset 13; a Reshape reads the same in every opset and reader).
  std::string unsqueeze(const std::string& x, const Value* input, int64_t axis) {
    auto shape = sizesOf(input);
    shape.insert(shape.begin() + axis, 1);
    const std::string o = fresh("Unsqueeze");
    node("Reshape", {x, shapeFor(shape, input)}, {o});
    return o;
  }
  void squeeze(const std::string& x, const Value* input, int64_t axis, const std::string& o) {
    auto shape = sizesOf(input);
    shape.erase(shape.begin() + axis);
    node("Reshape", {x, shapeFor(shape, input)}, {o});
  }
  void slice(const std::string& x, int64_t axis, int64_t start, int64_t end, int64_t step,
             const std::string& o) {
    node("Slice",
         {x, ints({start}, "starts"), ints({end}, "ends"), ints({axis}, "axes"),
          ints({step}, "steps")},
         {o});
  }
  void reduce(const std::string& type, const std::string& x, const std::vector<int64_t>& axes,
              bool keep, const std::string& o) {
    onnx::NodeProto* r;
    if (type == "ReduceSum" && opset_ >= 13) {
      r = node(type, {x, ints(axes, "axes")}, {o});
    } else {
      r = node(type, {x}, {o});
      attr(r, "axes", axes);
    }
    attr(r, "keepdims", static_cast<int64_t>(keep));
  }
  // Split as one Slice per part: the same numbers in every opset (Split's sizes moved from an
  // attribute to an input at opset 13, which readers such as OpenCV 4.6 do not follow).
  void split(const Node* n, const std::string& x, const std::vector<int64_t>& sizes, int64_t axis) {
    std::vector<std::string> outs;
    int64_t at = 0;
    for (int64_t size : sizes) {
      outs.push_back(fresh("Slice"));
      slice(x, axis, at, at + size, 1, outs.back());
      at += size;
    }
    lists_names_[n->output()] = outs;
  }

  void translate(Node* n) {
    const std::string k = n->kind().toQualString();
    const auto in = [&](size_t i) { return tensor(n->input(i)); };
    const auto o = [&](const std::string& type) { return out(n->output(), type); };

    if (k == "prim::Constant") return;  // read where used
    if (fold(n, k)) return;
    if (k == "prim::ListConstruct") {
      std::vector<const Value*> elems(n->inputs().begin(), n->inputs().end());
      lists_[n->output()] = elems;
      return;
    }
    if (k == "prim::ListUnpack") {
      auto it = lists_names_.find(n->input());
      if (it == lists_names_.end() || it->second.size() != n->outputs().size())
        unsupported(n, "of a list this exporter did not make");
      for (size_t i = 0; i < n->outputs().size(); ++i) alias(n->output(i), it->second[i]);
      return;
    }
    if (k == "aten::contiguous" || k == "aten::detach" || k == "aten::clone" ||
        k == "aten::dropout" || k == "aten::feature_dropout" || k == "aten::alpha_dropout" ||
        k == "aten::to") {
      alias(n->output(), in(0));
      return;
    }
    if (k == "aten::_convolution" || k == "aten::conv2d") {
      const bool full = k == "aten::_convolution";
      if (full && boolArg(n, 6)) unsupported(n, "transposed");
      const auto w = sizesOf(n->input(1));
      if (w.size() != 4) unsupported(n, "with a kernel of rank " + std::to_string(w.size()));
      std::vector<std::string> inputs = {in(0), in(1)};
      if (!isNone(n, 2)) inputs.push_back(in(2));
      auto* c = node("Conv", inputs, {o("Conv")});
      const auto pads = pair(intList(n, 4));
      attr(c, "kernel_shape", std::vector<int64_t>{w[2], w[3]});
      attr(c, "strides", pair(intList(n, 3)));
      attr(c, "pads", std::vector<int64_t>{pads[0], pads[1], pads[0], pads[1]});
      attr(c, "dilations", pair(intList(n, 5)));
      attr(c, "group", intArg(n, full ? 8 : 6));
      return;
    }
    if (k == "aten::batch_norm") {
      if (boolArg(n, 5)) unsupported(n, "in training mode (export evaluates the model)");
      const int64_t C = sizesOf(n->input(0))[1];
      const std::string w = isNone(n, 1) ? initializer(torch::ones({C}), "bn_w") : in(1);
      const std::string b = isNone(n, 2) ? initializer(torch::zeros({C}), "bn_b") : in(2);
      auto* bn = node("BatchNormalization", {in(0), w, b, in(3), in(4)}, {o("BatchNormalization")});
      attr(bn, "epsilon", static_cast<float>(doubleArg(n, 7)));
      attr(bn, "momentum", static_cast<float>(1.0 - doubleArg(n, 6)));
      return;
    }
    if (k == "aten::prelu") {
      // ONNX broadcasts the slope from the right: per-channel slopes as C x 1 x 1.
      auto c = constOf(n->input(1));
      if (!c || !c->isTensor()) unsupported(n, "with a slope computed at run time");
      const at::Tensor slope = c->toTensor();
      const int64_t rank = rankOf(n->input(0));
      std::string s = in(1);
      if (slope.numel() > 1 && rank > 2) {
        std::vector<int64_t> shape = {slope.numel()};
        for (int64_t i = 2; i < rank; ++i) shape.push_back(1);
        const std::string r = fresh("slope");
        node("Reshape", {s, ints(shape)}, {r});
        s = r;
      }
      node("PRelu", {in(0), s}, {o("PRelu")});
      return;
    }
    static const std::map<std::string, std::string> unary = {
        {"aten::relu", "Relu"}, {"aten::sigmoid", "Sigmoid"}, {"aten::tanh", "Tanh"},
        {"aten::exp", "Exp"},   {"aten::neg", "Neg"},         {"aten::abs", "Abs"},
        {"aten::sqrt", "Sqrt"}, {"aten::log", "Log"}};
    if (auto u = unary.find(k); u != unary.end()) {
      node(u->second, {in(0)}, {o(u->second)});
      return;
    }
    if (k == "aten::hardtanh" || k == "aten::relu6" || k == "aten::clamp") {
      const float lo = k == "aten::hardtanh" ? static_cast<float>(doubleArg(n, 1))
                       : k == "aten::relu6"  ? 0.f
                       : isNone(n, 1)        ? -std::numeric_limits<float>::max()
                                             : static_cast<float>(doubleArg(n, 1));
      const float hi = k == "aten::hardtanh" ? static_cast<float>(doubleArg(n, 2))
                       : k == "aten::relu6"  ? 6.f
                       : isNone(n, 2)        ? std::numeric_limits<float>::max()
                                             : static_cast<float>(doubleArg(n, 2));
      node("Clip", {in(0), scalar0F(lo), scalar0F(hi)}, {o("Clip")});
      return;
    }
    if (k == "aten::gelu") {
      // No Gelu before opset 20: 0.5 x (1 + erf(x / sqrt 2)), or the tanh form when asked for.
      const std::string approx = n->inputs().size() > 1 ? constant(n, 1).toStringRef() : "none";
      const std::string x = in(0);
      std::string inner;
      if (approx == "tanh") {
        const std::string x3 = fresh("x3"), a = fresh("a"), b = fresh("b"), c = fresh("c");
        node("Mul", {x, x}, {x3 + "_2"});
        node("Mul", {x3 + "_2", x}, {x3});
        node("Mul", {x3, scalarF(0.044715f)}, {a});
        node("Add", {x, a}, {b});
        node("Mul", {b, scalarF(static_cast<float>(std::sqrt(2.0 / M_PI)))}, {c});
        inner = fresh("Tanh");
        node("Tanh", {c}, {inner});
      } else {
        const std::string d = fresh("Div");
        node("Div", {x, scalarF(static_cast<float>(M_SQRT2))}, {d});
        inner = fresh("Erf");
        node("Erf", {d}, {inner});
      }
      const std::string one = fresh("Add"), half = fresh("Mul");
      node("Add", {inner, scalarF(1.f)}, {one});
      node("Mul", {x, scalarF(0.5f)}, {half});
      node("Mul", {half, one}, {o("Gelu")});
      return;
    }
    if (k == "aten::add" || k == "aten::sub") {
      std::string b = operand(n, 1);
      if (n->inputs().size() > 2 && doubleArg(n, 2) != 1.0) {
        const std::string m = fresh("Mul");
        node("Mul", {b, scalarF(static_cast<float>(doubleArg(n, 2)))}, {m});
        b = m;
      }
      const std::string type = k == "aten::add" ? "Add" : "Sub";
      node(type, {operand(n, 0), b}, {o(type)});
      return;
    }
    if (k == "aten::rsub") {  // other - alpha * self
      std::string a = operand(n, 0);
      if (n->inputs().size() > 2 && doubleArg(n, 2) != 1.0) {
        const std::string m = fresh("Mul");
        node("Mul", {a, scalarF(static_cast<float>(doubleArg(n, 2)))}, {m});
        a = m;
      }
      node("Sub", {operand(n, 1), a}, {o("Sub")});
      return;
    }
    if (k == "aten::mul" || k == "aten::div") {
      if (k == "aten::div" && n->inputs().size() > 2 && !isNone(n, 2))
        unsupported(n, "with a rounding mode");
      const std::string type = k == "aten::mul" ? "Mul" : "Div";
      node(type, {operand(n, 0), operand(n, 1)}, {o(type)});
      return;
    }
    if (k == "aten::gt" || k == "aten::lt") {
      const std::string type = k == "aten::gt" ? "Greater" : "Less";
      node(type, {operand(n, 0), operand(n, 1)}, {o(type)});
      return;
    }
    if (k == "aten::where") {
      node("Where", {in(0), operand(n, 1), operand(n, 2)}, {o("Where")});
      return;
    }
    if (k == "aten::ones_like" || k == "aten::zeros_like") {
      const std::string shape = fresh("Shape");
      node("Shape", {in(0)}, {shape});
      auto* c = node("ConstantOfShape", {shape}, {o("ConstantOfShape")});
      auto* a = c->add_attribute();
      a->set_name("value");
      a->set_type(onnx::AttributeProto::TENSOR);
      auto* t = a->mutable_t();
      t->set_data_type(onnx::TensorProto::FLOAT);
      t->add_dims(1);
      t->add_float_data(k == "aten::ones_like" ? 1.f : 0.f);
      return;
    }
    if (k == "aten::addmm" || k == "aten::mm" || k == "aten::matmul" || k == "aten::linear") {
      // A weight transposed by aten::t stays the checkpoint's parameter, read with transB.
      const size_t a_i = k == "aten::addmm" ? 1 : 0, b_i = a_i + 1;
      const Value* b = n->input(b_i);
      bool trans_b = k == "aten::linear";
      std::string b_name;
      // ONNX readers take a weight as Gemm's B with transB set (OpenCV 4.6 misreads it without).
      if (!trans_b && std::string(b->node()->kind().toQualString()) == "aten::t" &&
          constOf(b->node()->input())) {
        trans_b = true;
        b_name = tensor(b->node()->input());
      } else if (auto c = constOf(b); !trans_b && c && c->isTensor() && c->toTensor().dim() == 2) {
        trans_b = true;
        b_name = initializer(c->toTensor().t().contiguous(), hintOf(b) + ".t");
      } else {
        b_name = tensor(b);
      }
      if (k == "aten::matmul" && !trans_b) {
        node("MatMul", {in(a_i), b_name}, {o("MatMul")});
        return;
      }
      std::vector<std::string> inputs = {in(a_i), b_name};
      if (k == "aten::addmm") inputs.push_back(in(0));
      if (k == "aten::linear" && !isNone(n, 2)) inputs.push_back(in(2));
      auto* gemm = node("Gemm", inputs, {o("Gemm")});
      if (trans_b) attr(gemm, "transB", int64_t{1});
      if (k == "aten::addmm") {
        attr(gemm, "beta", static_cast<float>(doubleArg(n, 3)));
        attr(gemm, "alpha", static_cast<float>(doubleArg(n, 4)));
      }
      return;
    }
    if (k == "aten::t") {
      auto* t = node("Transpose", {in(0)}, {o("Transpose")});
      attr(t, "perm", std::vector<int64_t>{1, 0});
      return;
    }
    if (k == "aten::max_pool2d" || k == "aten::avg_pool2d") {
      const bool max = k == "aten::max_pool2d";
      const auto kernel = pair(intList(n, 1));
      auto stride = intList(n, 2);
      stride = stride.empty() ? kernel : pair(stride);
      const auto pad = pair(intList(n, 3));
      const bool ceil = boolArg(n, max ? 5 : 4);
      if (max) {
        for (int64_t d : intList(n, 4))
          if (d != 1) unsupported(n, "with dilation");
      }
      if (!max && n->inputs().size() > 6 && !isNone(n, 6)) unsupported(n, "with a divisor");
      auto* p =
          node(max ? "MaxPool" : "AveragePool", {in(0)}, {o(max ? "MaxPool" : "AveragePool")});
      attr(p, "kernel_shape", kernel);
      attr(p, "strides", stride);
      attr(p, "pads", std::vector<int64_t>{pad[0], pad[1], pad[0], pad[1]});
      if (ceil) attr(p, "ceil_mode", int64_t{1});
      if (!max) attr(p, "count_include_pad", static_cast<int64_t>(boolArg(n, 5)));
      return;
    }
    if (k == "aten::adaptive_avg_pool2d") {
      if (intList(n, 1) != std::vector<int64_t>{1, 1}) unsupported(n, "to a size other than 1x1");
      node("GlobalAveragePool", {in(0)}, {o("GlobalAveragePool")});
      return;
    }
    if (k == "aten::mean" || k == "aten::sum") {
      if (n->inputs().size() < 3) unsupported(n, "over all elements");
      const int64_t rank = rankOf(n->input(0));
      std::vector<int64_t> axes;
      for (int64_t d : intList(n, 1)) axes.push_back(wrap(d, rank));
      reduce(k == "aten::mean" ? "ReduceMean" : "ReduceSum", in(0), axes, boolArg(n, 2),
             o(k == "aten::mean" ? "ReduceMean" : "ReduceSum"));
      return;
    }
    if (k == "aten::softmax") {
      const int64_t rank = rankOf(n->input(0));
      const int64_t axis = wrap(intArg(n, 1), rank);
      if (opset_ >= 13 || axis == rank - 1) {
        attr(node("Softmax", {in(0)}, {o("Softmax")}), "axis", axis);
        return;
      }
      // Before opset 13 Softmax flattens the axes after `axis`: move the axis last around it.
      std::vector<int64_t> perm(static_cast<size_t>(rank));
      for (int64_t i = 0; i < rank; ++i) perm[static_cast<size_t>(i)] = i;
      std::swap(perm[static_cast<size_t>(axis)], perm.back());
      const std::string t1 = fresh("Transpose"), s = fresh("Softmax");
      attr(node("Transpose", {in(0)}, {t1}), "perm", perm);
      attr(node("Softmax", {t1}, {s}), "axis", rank - 1);
      attr(node("Transpose", {s}, {o("Transpose")}), "perm", perm);
      return;
    }
    if (k == "aten::view" || k == "aten::reshape") {
      node("Reshape", {in(0), shapeFor(intList(n, 1), n->input(0))}, {o("Reshape")});
      return;
    }
    if (k == "aten::flatten") {
      const int64_t rank = rankOf(n->input(0));
      const int64_t start = wrap(intArg(n, 1), rank), end = wrap(intArg(n, 2), rank);
      if (start == 1 && end == rank - 1) {
        attr(node("Flatten", {in(0)}, {o("Flatten")}), "axis", int64_t{1});
      } else {
        node("Reshape", {in(0), shapeFor(sizesOf(n->output()), n->input(0))}, {o("Reshape")});
      }
      return;
    }
    if (k == "aten::unsqueeze") {
      const int64_t axis = wrap(intArg(n, 1), rankOf(n->input(0)) + 1);
      alias(n->output(), unsqueeze(in(0), n->input(0), axis));
      return;
    }
    if (k == "aten::squeeze" && n->inputs().size() == 2) {
      squeeze(in(0), n->input(0), wrap(intArg(n, 1), rankOf(n->input(0))), o("Squeeze"));
      return;
    }
    if (k == "aten::slice") {
      const int64_t rank = rankOf(n->input(0));
      const int64_t axis = wrap(intArg(n, 1), rank);
      const int64_t start = isNone(n, 2) ? 0 : intArg(n, 2);
      const int64_t end = isNone(n, 3) ? std::numeric_limits<int64_t>::max() : intArg(n, 3);
      const int64_t step = intArg(n, 4);
      const int64_t dim = sizesOf(n->input(0))[static_cast<size_t>(axis)];
      if (start == 0 && end >= dim && step == 1 && !(dynamic_ && axis == 0)) {
        alias(n->output(), in(0));  // the whole axis: LibTorch records x[:, ...] this way
        return;
      }
      slice(in(0), axis, start, end, step, o("Slice"));
      return;
    }
    if (k == "aten::narrow") {
      const int64_t axis = wrap(intArg(n, 1), rankOf(n->input(0)));
      const int64_t start = intArg(n, 2);
      slice(in(0), axis, start, start + intArg(n, 3), 1, o("Slice"));
      return;
    }
    if (k == "aten::select") {
      const int64_t axis = wrap(intArg(n, 1), rankOf(n->input(0)));
      int64_t index = intArg(n, 2);
      if (index < 0) index += sizesOf(n->input(0))[static_cast<size_t>(axis)];
      const std::string s = fresh("Slice");
      slice(in(0), axis, index, index + 1, 1, s);
      squeeze(s, n->input(0), axis, o("Squeeze"));
      return;
    }
    if (k == "aten::cat" || k == "aten::stack") {
      auto it = lists_.find(n->input(0));
      if (it == lists_.end()) unsupported(n, "of a list computed at run time");
      const int64_t rank = rankOf(it->second.at(0)) + (k == "aten::stack" ? 1 : 0);
      const int64_t axis = wrap(intArg(n, 1), rank);
      std::vector<std::string> parts;
      for (const Value* v : it->second)
        parts.push_back(k == "aten::stack" ? unsqueeze(tensor(v), v, axis) : tensor(v));
      attr(node("Concat", parts, {o("Concat")}), "axis", axis);
      return;
    }
    if (k == "aten::split" || k == "aten::split_with_sizes" || k == "aten::chunk" ||
        k == "aten::unbind") {
      const auto sizes = sizesOf(n->input(0));
      const int64_t rank = static_cast<int64_t>(sizes.size());
      const int64_t axis = wrap(intArg(n, k == "aten::unbind" ? 1 : 2), rank);
      const int64_t dim = sizes[static_cast<size_t>(axis)];
      std::vector<int64_t> parts;
      if (k == "aten::split_with_sizes") {
        parts = intList(n, 1);
      } else {
        const int64_t step = k == "aten::split"   ? intArg(n, 1)
                             : k == "aten::chunk" ? (dim + intArg(n, 1) - 1) / intArg(n, 1)
                                                  : 1;
        for (int64_t at = 0; at < dim; at += step) parts.push_back(std::min(step, dim - at));
      }
      split(n, in(0), parts, axis);
      if (k == "aten::unbind") {
        auto& outs = lists_names_[n->output()];
        for (auto& s : outs) {
          const std::string q = fresh("Squeeze");
          squeeze(s, n->input(0), axis, q);
          s = q;
        }
      }
      return;
    }
    if (k == "aten::group_norm") {
      // No GroupNormalization before opset 18: InstanceNormalization over N x G x rest, then the
      // per-channel affine.
      const int64_t G = intArg(n, 1);
      const int64_t C = sizesOf(n->input(0))[1];
      const int64_t rank = rankOf(n->input(0));
      const std::string r = fresh("Reshape"), inorm = fresh("InstanceNormalization"),
                        shape = fresh("Shape"), back = fresh("Reshape");
      node("Reshape", {in(0), ints({0, G, -1})}, {r});
      auto* nn = node(
          "InstanceNormalization",
          {r, initializer(torch::ones({G}), "gn_scale"), initializer(torch::zeros({G}), "gn_bias")},
          {inorm});
      attr(nn, "epsilon", static_cast<float>(doubleArg(n, 4)));
      node("Shape", {in(0)}, {shape});
      node("Reshape", {inorm, shape}, {back});
      std::vector<int64_t> affine = {C};
      for (int64_t i = 2; i < rank; ++i) affine.push_back(1);
      std::string y = back;
      if (!isNone(n, 2)) {
        const std::string w = fresh("gn_w"), m = fresh("Mul");
        node("Reshape", {in(2), ints(affine)}, {w});
        node("Mul", {y, w}, {m});
        y = m;
      }
      if (!isNone(n, 3)) {
        const std::string b = fresh("gn_b"), a = fresh("Add");
        node("Reshape", {in(3), ints(affine)}, {b});
        node("Add", {y, b}, {a});
        y = a;
      }
      alias(n->output(), y);
      return;
    }
    if (k == "aten::upsample_nearest2d") {
      const auto x = sizesOf(n->input(0)), y = sizesOf(n->output());
      const std::vector<float> scales = {1.f, 1.f, static_cast<float>(y[2]) / x[2],
                                         static_cast<float>(y[3]) / x[3]};
      auto* r = node("Resize",
                     {in(0), initializer(torch::zeros({0}), "roi"),
                      initializer(torch::tensor(scales), "scales")},
                     {o("Resize")});
      attr(r, "mode", std::string("nearest"));
      attr(r, "coordinate_transformation_mode", std::string("asymmetric"));
      attr(r, "nearest_mode", std::string("floor"));
      return;
    }
    if (k == "aten::expand_as") {
      const std::string shape = fresh("Shape");
      node("Shape", {in(1)}, {shape});
      node("Expand", {in(0), shape}, {o("Expand")});
      return;
    }
    if (k == "aten::empty" || k == "aten::empty_like")
      unsupported(n, "(a hand-written kernel ran while tracing: it has no ONNX form)");
    unsupported(n, "has no ONNX form in this exporter");
  }

  onnx::GraphProto* g_;
  int opset_;
  std::unordered_map<const void*, std::string> param_names_;
  std::unordered_map<const void*, std::pair<std::string, std::vector<int64_t>>> emitted_;
  std::unordered_map<const Value*, std::string> names_;
  std::unordered_map<const Value*, std::vector<const Value*>> lists_;
  std::unordered_map<const Value*, c10::IValue> consts_;
  std::unordered_map<const Value*, std::string> hints_;
  std::unordered_map<const Value*, std::vector<std::string>> lists_names_;
  int64_t batch_;
  bool dynamic_;
  int64_t floats_ = 0;
  int counter_ = 0;
};

// Parameters are traced as constants; they must not require gradients while the tracer runs.
class FrozenParameters {
 public:
  explicit FrozenParameters(torch::nn::Module& m) : module_(m), training_(m.is_training()) {
    for (auto& p : m.parameters()) {
      flags_.push_back(p.requires_grad());
      p.set_requires_grad(false);
    }
    m.eval();
  }
  ~FrozenParameters() {
    size_t i = 0;
    for (auto& p : module_.parameters()) p.set_requires_grad(flags_[i++]);
    module_.train(training_);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  torch::nn::Module& module_;
  std::vector<bool> flags_;
  bool training_;
};

void addValueInfo(onnx::ValueInfoProto* info, const std::string& name,
                  const std::vector<int64_t>& shape, bool dynamic) {
  info->set_name(name);
  auto* t = info->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* s = t->mutable_shape();
  for (size_t i = 0; i < shape.size(); ++i) {
    auto* d = s->add_dim();
    if (i == 0 && dynamic)
      d->set_dim_param("None");
    else
      d->set_dim_value(shape[i]);
  }
}

}  // namespace

OnnxExportSummary exportOnnx(nn::BackboneImpl& model, const std::string& path,
                             const OnnxExportOptions& options) {
  if (options.opset < kOnnxMinOpset || options.opset > kOnnxMaxOpset)
    throw Error("ONNX export: opset " + std::to_string(options.opset) + " is not supported (" +
                std::to_string(kOnnxMinOpset) + " to " + std::to_string(kOnnxMaxOpset) + ")");
  if (!model.differentiable())
    throw Error("ONNX export: " + model.arch().description +
                " is not a LibTorch network (an ONNX file already?)");
  FrozenParameters frozen(model);
  torch::NoGradGuard no_grad;
  const int64_t batch = options.dynamic_batch ? 3 : 1;  // 3: a batch size no layer has
  const int size = model.inputSize();
  const at::Tensor x = torch::rand({batch, 3, size, size}) * 2 - 1;

  // Trace with a tap, and name every tapped tensor the graph computes "layer/key".
  std::unordered_map<const Value*, std::string> names;
  auto traced = torch::jit::tracer::trace(
      {x},
      [&](torch::jit::Stack in) -> torch::jit::Stack {
        nn::Tap tap;
        at::Tensor y = model.forward(in.at(0).toTensor(), &tap);
        for (const auto& [layer, parts] : tap.layers()) {
          for (const auto& [key, t] : parts) {
            if (!t.defined()) continue;
            Value* v = torch::jit::tracer::getValueTrace(t);
            if (v->node()->kind() == c10::prim::Constant || v->node()->kind() == c10::prim::Param)
              continue;
            names.emplace(v, layer + "/" + key);
          }
        }
        return {y};
      },
      [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/false);
  std::shared_ptr<torch::jit::Graph> graph = traced.first->graph;
  torch::jit::EliminateDeadCode(graph);

  std::unordered_map<const void*, std::string> params;
  for (const auto& p : model.named_parameters()) params.emplace(p.value().data_ptr(), p.key());
  for (const auto& b : model.named_buffers()) params.emplace(b.value().data_ptr(), b.key());

  onnx::ModelProto proto;
  proto.set_ir_version(irVersionFor(options.opset));
  proto.set_producer_name("msconv-lab");
  proto.set_producer_version(options.producer_version);
  proto.set_doc_string("MSConv Lab " + model.arch().str() + " with operator " + model.op().str() +
                       ": input RGB 112x112, (x - 127.5) / 127.5; output the " +
                       std::to_string(model.embeddingDim()) + "-d embedding");
  auto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  const std::vector<std::pair<std::string, std::string>> meta = {{"arch", model.arch().str()},
                                                                 {"op", model.op().str()},
                                                                 {"input_mean", "127.5"},
                                                                 {"input_std", "127.5"},
                                                                 {"input_color", "RGB"}};
  for (const auto& [key, value] : meta) {
    auto* m = proto.add_metadata_props();
    m->set_key(key);
    m->set_value(value);
  }

  auto* g = proto.mutable_graph();
  g->set_name(model.arch().str());
  const Value* input = graph->inputs().at(0);
  names.emplace(input, "data");
  // Tapped names that left the graph with dead code are not named in the file.
  std::vector<std::string> kept;
  std::set<const Value*> alive;
  for (const Node* n : graph->nodes())
    for (const Value* v : n->outputs()) alive.insert(v);
  for (auto it = names.begin(); it != names.end();) {
    if (it->first != input && !alive.count(it->first)) {
      it = names.erase(it);
    } else {
      if (it->first != input) kept.push_back(it->second);
      ++it;
    }
  }
  Translator tr(g, options.opset, std::move(params), names, batch, options.dynamic_batch);
  tr.run(*graph);
  addValueInfo(g->add_input(), "data", {batch, 3, size, size}, options.dynamic_batch);
  const Value* output = graph->outputs().at(0);
  const std::string out_name = tr.nameOf(output);
  // The output is called "embedding" whatever node made it.
  auto* id = g->add_node();
  id->set_op_type("Identity");
  id->set_name("embedding");
  id->add_input(out_name);
  id->add_output("embedding");
  addValueInfo(g->add_output(), "embedding", {batch, model.embeddingDim()}, options.dynamic_batch);

  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw Error(path + ": the ONNX model did not serialise");
  writeFileAtomically(path, bytes);

  OnnxExportSummary s;
  s.opset = options.opset;
  s.nodes = g->node_size();
  s.initializers = g->initializer_size();
  s.parameters = tr.parameters();
  const auto types = tr.opTypes();
  s.op_types.assign(types.begin(), types.end());
  std::sort(kept.begin(), kept.end());
  s.named_values = kept;
  return s;
}

}  // namespace msconv::model
