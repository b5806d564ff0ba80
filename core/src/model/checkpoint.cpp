#include "msconv/model/checkpoint.h"

#include "msconv/model/onnx_model.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "msconv/atomic_file.h"
#include "msconv/error.h"
#include "util/torch_error.h"

namespace msconv::model {

using util::firstLine;

void saveArchiveAtomically(torch::serialize::OutputArchive& archive, const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) throw Error(path + ": cannot create its folder: " + ec.message());
  }
  AtomicFile file(path);
  try {
    // LibTorch's zip writer throws from its destructor when a write comes up short (a full
    // disk): it always sees its bytes taken, and the first failure is reported by commit().
    archive.save_to([&file](const void* data, size_t size) -> size_t {
      file.writeNoThrow(data, size);
      return size;
    });
  } catch (const c10::Error& e) {
    throw Error(path + ": cannot write checkpoint: " + firstLine(e));
  }
  file.commit();
}

void writeModelEntries(torch::serialize::OutputArchive& archive, nn::BackboneImpl& model) {
  archive.write("format", c10::IValue(std::string(kCheckpointFormat)));
  archive.write("version", c10::IValue(static_cast<int64_t>(kCheckpointVersion)));
  archive.write("arch", c10::IValue(model.arch().str()));
  archive.write("prelu", c10::IValue(std::string(nn::preluSlopesName(model.arch().prelu))));
  archive.write("op", c10::IValue(model.op().str()));
  torch::serialize::OutputArchive weights;
  model.save(weights);
  archive.write("model", weights);
}

void saveModel(const std::string& path, nn::BackboneImpl& model, const at::Tensor& head) {
  torch::serialize::OutputArchive archive;
  writeModelEntries(archive, model);
  if (head.defined()) {
    torch::serialize::OutputArchive h;
    h.write("weight", head);
    archive.write("head", h);
  }
  saveArchiveAtomically(archive, path);
}

LoadedModel loadModel(const std::string& path) {
  if (isOnnxPath(path)) {  // ONNX in: run by OpenCV's DNN module
    LoadedModel out;
    out.model = std::make_shared<OnnxBackboneImpl>(path);
    out.arch = "onnx";
    out.op = "onnx";
    return out;
  }
  torch::serialize::InputArchive archive;
  openCheckpoint(path, archive);
  const ModelDescription d = describeModel(archive, path);
  LoadedModel out;
  out.arch = d.arch.str();
  out.op = d.op.str();
  try {
    out.model = nn::makeBackbone(d.arch, d.op);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  torch::serialize::InputArchive weights;
  if (!archive.try_read("model", weights)) throw Error(path + ": checkpoint has no model weights");
  try {
    out.model->load(weights);
  } catch (const c10::Error& e) {
    throw Error(path + ": weights do not fit " + out.arch + " / " + out.op + ": " + firstLine(e));
  }
  out.model->eval();
  return out;
}

}  // namespace msconv::model
