// ONNX in: OpenCV's DNN module runs the network; the ONNX library's classes read the graph
// around it (input shape, normalisation, the names of its tensors).
#include "msconv/model/onnx_model.h"

#include <onnx/onnx_pb.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/dnn.hpp>
#include <set>
#include <sstream>

#include "msconv/error.h"
#include "msconv/nn/tap.h"

namespace msconv::model {

namespace fs = std::filesystem;

bool isOnnxPath(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == ".onnx";
}

struct OnnxBackboneImpl::State {
  std::string path, producer, input_name, output_layer;
  int64_t opset = 0;
  bool fixed_batch_one = false;
  int64_t parameters = 0;
  double mean = 127.5, std = 127.5;
  cv::dnn::Net net;    // layer fusion on: embeddings
  cv::dnn::Net plain;  // fusion off, made on first use: every named tensor as the graph has it
  std::map<std::string, std::string> layer_of;  // tensor name -> OpenCV layer name
};

namespace {

onnx::ModelProto readModel(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the ONNX file");
  onnx::ModelProto m;
  if (!m.ParseFromIstream(&in))
    throw Error(path + ": not an ONNX model (the protobuf does not parse)");
  if (!m.has_graph() || m.graph().input_size() == 0 || m.graph().output_size() == 0)
    throw Error(path + ": an ONNX model without a graph, input or output");
  return m;
}

// OpenCV 4.6 names the layer of an ONNX node "onnx_node!" + its name, or, for a node without a
// name, "onnx_node_output_0!" + its first output.
std::string cvLayerName(const onnx::NodeProto& n) {
  return n.name().empty() ? "onnx_node_output_0!" + n.output(0) : "onnx_node!" + n.name();
}

}  // namespace

OnnxBackboneImpl::OnnxBackboneImpl(const std::string& path) : s_(std::make_unique<State>()) {
  s_->path = path;
  const onnx::ModelProto m = readModel(path);
  const auto& g = m.graph();
  s_->producer =
      m.producer_name() + (m.producer_version().empty() ? "" : " " + m.producer_version());
  for (const auto& o : m.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") s_->opset = o.version();

  // The image input: the first graph input that is not an initialiser.
  std::set<std::string> inits;
  for (const auto& i : g.initializer()) {
    inits.insert(i.name());
    if (i.data_type() != onnx::TensorProto::FLOAT) continue;
    int64_t count = 1;
    for (int64_t d : i.dims()) count *= d;
    s_->parameters += count;
  }
  const onnx::ValueInfoProto* input = nullptr;
  for (const auto& i : g.input())
    if (!inits.count(i.name())) {
      input = &i;
      break;
    }
  if (!input) throw Error(path + ": the graph has no image input");
  s_->input_name = input->name();
  const auto& dims = input->type().tensor_type().shape().dim();
  auto dim = [&](int i) { return dims[i].has_dim_value() ? dims[i].dim_value() : int64_t{-1}; };
  if (dims.size() != 4 || dim(1) != 3 || (dim(2) != 112 && dim(2) != -1) ||
      (dim(3) != 112 && dim(3) != -1))
    throw Error(path + ": input '" + input->name() +
                "' is not N x 3 x 112 x 112 (a face model as insightface's takes)");
  s_->fixed_batch_one = dim(0) == 1;

  // Normalisation. MSConv Lab's exports say it in their metadata; otherwise insightface's rule
  // (model_zoo/arcface_onnx.py): Sub and Mul among the first eight nodes mean the graph scales
  // raw pixels itself (mean 0, std 1), else (x - 127.5) / 127.5.
  std::map<std::string, std::string> meta;
  for (const auto& p : m.metadata_props()) meta[p.key()] = p.value();
  if (meta.count("input_mean") && meta.count("input_std")) {
    s_->mean = std::stod(meta["input_mean"]);
    s_->std = std::stod(meta["input_std"]);
  } else {
    bool sub = false, mul = false;
    for (int i = 0; i < std::min(8, g.node_size()); ++i) {
      const std::string& name = g.node(i).name();
      if (name.rfind("Sub", 0) == 0 || name.rfind("_minus", 0) == 0) sub = true;
      if (name.rfind("Mul", 0) == 0 || name.rfind("_mul", 0) == 0) mul = true;
    }
    if (sub && mul) s_->mean = 0, s_->std = 1;
  }

  for (const auto& n : g.node()) {
    if (n.output_size() == 0 || n.output(0).empty()) continue;
    s_->layer_of[n.output(0)] = cvLayerName(n);
    layers_.push_back(n.output(0));
  }
  try {
    s_->net = cv::dnn::readNetFromONNX(path);
  } catch (const cv::Exception& e) {
    std::string why = e.what();
    const auto node = why.find("Node [");
    if (node != std::string::npos) why = why.substr(node, why.find('\n', node) - node);
    throw Error(path + ": OpenCV's DNN module cannot run this model: " + why);
  }
  s_->net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  const auto outs = s_->net.getUnconnectedOutLayersNames();
  if (outs.empty()) throw Error(path + ": the network has no output");
  s_->output_layer = outs.front();
  // The embedding size, from one forward pass of a blank face (shapes are not always declared).
  const at::Tensor probe = forward(torch::zeros({1, 3, 112, 112}));
  arch_.name = "onnx";
  arch_.embedding = static_cast<int>(probe.size(1));
  arch_.blocks.clear();
  arch_.description = fs::path(path).filename().string();
}

OnnxBackboneImpl::~OnnxBackboneImpl() = default;

const std::string& OnnxBackboneImpl::path() const {
  return s_->path;
}
int64_t OnnxBackboneImpl::parameterCount() const {
  return s_->parameters;
}
double OnnxBackboneImpl::inputMean() const {
  return s_->mean;
}
double OnnxBackboneImpl::inputStd() const {
  return s_->std;
}

std::string OnnxBackboneImpl::summary() const {
  std::ostringstream os;
  os << fs::path(s_->path).filename().string() << ": ONNX opset " << s_->opset;
  if (!s_->producer.empty()) os << " from " << s_->producer;
  os << ", input '" << s_->input_name << "' " << (s_->fixed_batch_one ? "1" : "N")
     << "x3x112x112 RGB (x - " << s_->mean << ") / " << s_->std << ", " << arch_.embedding
     << "-d embedding, " << layers_.size() << " named tensors (OpenCV DNN)";
  return os.str();
}

torch::Tensor OnnxBackboneImpl::forward(const torch::Tensor& x_in, nn::Tap* tap) {
  if (x_in.dim() != 4 || x_in.size(1) != 3)
    throw Error(s_->path + ": the input must be N x 3 x H x W");
  // Back to the graph's own scaling: x was (p - 127.5) / 127.5.
  const at::Tensor x =
      ((x_in.detach().to(torch::kCPU, torch::kFloat) * 127.5 + 127.5 - s_->mean) / s_->std)
          .contiguous();
  std::vector<std::string> wanted;
  if (tap) {
    for (const auto& name : layers_)
      if (tap->wants(name) && name != s_->output_layer) wanted.push_back(name);
  }
  cv::dnn::Net* net = &s_->net;
  std::vector<cv::String> names = {s_->output_layer};
  if (!wanted.empty()) {
    if (s_->plain.empty()) {
      s_->plain = cv::dnn::readNetFromONNX(s_->path);
      s_->plain.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      s_->plain.enableFusion(false);
    }
    net = &s_->plain;
    for (const auto& w : wanted) {
      const std::string& layer = s_->layer_of.at(w);
      if (net->getLayerId(layer) < 0)
        throw Error(s_->path + ": tensor '" + w +
                    "' has no layer in OpenCV's network (it merged it)");
      names.push_back(layer);
    }
  }
  // A graph declared for one image runs one image at a time.
  const int64_t n = x.size(0), step = s_->fixed_batch_one ? 1 : n;
  std::vector<std::vector<at::Tensor>> parts(names.size());
  for (int64_t b = 0; b < n; b += step) {
    const at::Tensor chunk = x.narrow(0, b, std::min(step, n - b)).contiguous();
    const int shape[4] = {static_cast<int>(chunk.size(0)), 3, static_cast<int>(chunk.size(2)),
                          static_cast<int>(chunk.size(3))};
    cv::Mat blob(4, shape, CV_32F, chunk.data_ptr<float>());
    net->setInput(blob);
    std::vector<cv::Mat> outs;
    try {
      net->forward(outs, names);
    } catch (const cv::Exception& e) {
      throw Error(s_->path + ": OpenCV's DNN module failed running the model: " + e.what());
    }
    for (size_t i = 0; i < outs.size(); ++i) {
      std::vector<int64_t> sizes(outs[i].size.p, outs[i].size.p + outs[i].dims);
      parts[i].push_back(torch::from_blob(outs[i].ptr<float>(), sizes, torch::kFloat).clone());
    }
  }
  std::vector<at::Tensor> joined;
  for (auto& p : parts) joined.push_back(p.size() == 1 ? p[0] : torch::cat(p, 0));
  at::Tensor y = joined[0];
  if (y.dim() > 2) y = y.flatten(1);
  for (size_t i = 0; i < wanted.size(); ++i) tap->put(wanted[i], "out", joined[i + 1]);
  return y.to(x_in.device());
}

}  // namespace msconv::model
