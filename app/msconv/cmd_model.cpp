// msconv import / embed: PyTorch state_dicts into checkpoints, and embeddings of single images.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "msconv/data/image.h"
#include "msconv/error.h"
#include "msconv/io/state_dict.h"
#include "msconv/model/checkpoint.h"
#include "msconv/model/import.h"
#include "msconv/model/onnx.h"
#include "msconv/nn/backbone.h"
#include "msconv/nn/inference.h"
#include "msconv/store/run_store.h"

namespace msconv::cli {

int cmdImport(const Argv& argv) {
  Args args(
      argv,
      {
          {"--state-dict", true,
           "torch.save file: a state_dict (model.pt) or an arcface_torch "
           "checkpoint_gpu_<rank>.pt; repeat with every rank's checkpoint to assemble the "
           "head"},
          {"--arch", true, "architecture the weights belong to (msnet50, msnet50:width=0.5...)"},
          {"--op", true, "3x3 operator (default: the architecture's)"},
          {"--output", true, "checkpoint to write", "-o"},
          {"--allow-partial", false, "import what fits, report the rest"},
          {"--help", false, "this help"},
      });
  if (args.flag("--help")) {
    std::cout << "usage: msconv import --state-dict FILE [--state-dict FILE...] --arch NAME "
                 "[--op OP] -o OUT.ckpt [--allow-partial]\n"
              << args.usage();
    return 0;
  }
  const auto files = args.values("--state-dict");
  if (files.empty()) throw Error("--state-dict is required");
  const std::string out = args.required("--output");
  const nn::ArchSpec arch = nn::parseArch(args.required("--arch"));
  const auto op = args.value("--op");
  const auto imported =
      model::importTorchFiles(files, arch, op ? nn::parseOpSpec(*op) : nn::defaultOpFor(arch),
                              args.flag("--allow-partial"));
  model::saveModel(out, *imported.model, imported.head);
  std::cerr << "import: " << imported.summary() << "\n";
  std::cout << out << "\n";
  return 0;
}

int cmdEmbed(const Argv& argv) {
  Args args(argv, {
                      {"--checkpoint", true, "MSConv Lab checkpoint"},
                      {"--image", true, "face image (resized to 112x112)"},
                      {"--json", false, "print {\"embedding\": [...]}"},
                      {"--training-graph", false,
                       "embed with the model as trained, not its inference form"},
                      {"--help", false, "this help"},
                  });
  if (args.flag("--help")) {
    std::cout << "usage: msconv embed --checkpoint CKPT --image IMG [--json]\n" << args.usage();
    return 0;
  }
  auto loaded = model::loadModel(args.required("--checkpoint"));
  if (!args.flag("--training-graph")) loaded.model = nn::inferenceCopy(loaded.model);
  const torch::Tensor image = data::loadFaceImage(args.required("--image"), 112);
  c10::InferenceMode no_autograd;
  const torch::Tensor emb =
      loaded.model->forward(nn::inferenceInput(*loaded.model, image.unsqueeze(0)))[0].contiguous();
  const float* e = emb.data_ptr<float>();
  if (args.flag("--json")) {
    nlohmann::json j;
    j["embedding"] = std::vector<float>(e, e + emb.numel());
    j["norm"] = emb.norm().item<double>();
    std::cout << j.dump() << "\n";
  } else {
    for (int64_t i = 0; i < emb.numel(); ++i)
      std::printf("%.7g%c", e[i], i + 1 < emb.numel() ? ' ' : '\n');
  }
  return 0;
}

int cmdExport(const Argv& argv) {
  Args args(argv, {
                      {"--checkpoint", true, "MSConv Lab checkpoint"},
                      {"--onnx", true, "ONNX file to write (written whole or not at all)"},
                      {"--opset", true,
                       "ONNX opset, " + std::to_string(model::kOnnxMinOpset) + " to " +
                           std::to_string(model::kOnnxMaxOpset) + " (default 11, insightface's)"},
                      {"--dynamic-batch", false, "a batch axis of any size (named None)"},
                      {"--json", false, "print the summary as JSON"},
                      {"--help", false, "this help"},
                  });
  if (args.flag("--help")) {
    std::cout << "usage: msconv export --checkpoint CKPT --onnx OUT.onnx [--opset N] "
                 "[--dynamic-batch] [--json]\n"
                 "Input \"data\": N x 3 x 112 x 112 RGB, (x - 127.5) / 127.5; output "
                 "\"embedding\": N x D.\n"
              << args.usage();
    return 0;
  }
  const std::string ckpt = args.required("--checkpoint");
  const std::string out = args.required("--onnx");
  model::OnnxExportOptions options;
  options.opset = args.integer("--opset", options.opset);
  options.dynamic_batch = args.flag("--dynamic-batch");
  options.producer_version = store::projectVersion();
  auto loaded = model::loadModel(ckpt);
  const auto s = model::exportOnnx(*loaded.model, out, options);
  if (args.flag("--json")) {
    nlohmann::json j;
    j["onnx"] = out;
    j["opset"] = s.opset;
    j["nodes"] = s.nodes;
    j["initializers"] = s.initializers;
    j["parameters"] = s.parameters;
    j["op_types"] = s.op_types;
    j["named_values"] = s.named_values;
    std::cout << j.dump() << "\n";
  } else {
    std::cerr << "export: " << loaded.arch << " / " << loaded.op << ": " << s.nodes << " nodes, "
              << s.initializers << " initializers (" << s.parameters << " parameters), opset "
              << s.opset << ", " << s.named_values.size() << " layer tensors named\n";
    std::cout << out << "\n";
  }
  return 0;
}

}  // namespace msconv::cli
