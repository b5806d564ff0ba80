#include "msconv/model/import.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <regex>

#include "msconv/error.h"

namespace msconv::model {
namespace {

// The rank in "checkpoint_gpu_<rank>.pt", or -1.
int rankOfName(const std::string& path) {
  static const std::regex pattern(R"(checkpoint_gpu_([0-9]+)\.pt)");
  std::smatch m;
  const std::string name = std::filesystem::path(path).filename().string();
  if (!std::regex_match(name, m, pattern)) return -1;
  return std::stoi(m[1].str());
}

struct RankFile {
  std::string path;
  io::TorchCheckpoint ckpt;
};

// The files in rank order: by their names when every one is checkpoint_gpu_<rank>.pt (ranks 0 to
// N-1, each once), else as given.
std::vector<RankFile> inRankOrder(std::vector<RankFile> files) {
  std::vector<int> ranks;
  for (const auto& f : files) ranks.push_back(rankOfName(f.path));
  if (std::any_of(ranks.begin(), ranks.end(), [](int r) { return r < 0; })) return files;
  std::vector<RankFile> ordered(files.size());
  std::vector<bool> seen(files.size(), false);
  for (size_t i = 0; i < files.size(); ++i) {
    const int r = ranks[i];
    if (r >= static_cast<int>(files.size()))
      throw Error(files[i].path + ": rank " + std::to_string(r) + " of " +
                  std::to_string(files.size()) + " files; pass every rank's checkpoint, 0 to " +
                  std::to_string(files.size() - 1));
    if (seen[r]) throw Error(files[i].path + ": rank " + std::to_string(r) + " given twice");
    seen[r] = true;
    ordered[r] = std::move(files[i]);
  }
  return ordered;
}

std::string names(const std::vector<RankFile>& files) {
  std::string out;
  for (const auto& f : files)
    out += (out.empty() ? "" : " + ") + std::filesystem::path(f.path).filename().string();
  return out;
}

torch::Tensor assembleHead(const std::vector<RankFile>& files, int embedding, int& ranks) {
  ranks = 0;
  const auto& first = files.front();
  if (!first.ckpt.head.defined()) {
    for (const auto& f : files)
      if (f.ckpt.head.defined())
        throw Error(first.path + ": no 'state_dict_softmax_fc' while " + f.path + " has one");
    return {};
  }
  for (const auto& f : files) {
    if (!f.ckpt.head.defined())
      throw Error(f.path + ": no 'state_dict_softmax_fc' (the head's shard of this rank)");
    if (f.ckpt.head.size(1) != embedding)
      throw Error(f.path + ": 'state_dict_softmax_fc.weight' has " +
                  std::to_string(f.ckpt.head.size(1)) + "-d centres; the model's embedding is " +
                  std::to_string(embedding));
  }
  ranks = static_cast<int>(files.size());
  if (files.size() == 1) return first.ckpt.head.to(torch::kFloat32).contiguous();
  bool replicated = true;
  for (const auto& f : files)
    replicated = replicated && f.ckpt.head.sizes() == first.ckpt.head.sizes() &&
                 torch::equal(f.ckpt.head, first.ckpt.head);
  if (replicated) return first.ckpt.head.to(torch::kFloat32).contiguous();
  // Partial FC: rank r holds num_classes / world (+1 for the first num_classes % world ranks).
  std::vector<torch::Tensor> shards;
  for (size_t r = 0; r < files.size(); ++r) {
    const int64_t n = files[r].ckpt.head.size(0), n0 = first.ckpt.head.size(0);
    if (n > n0 || n < n0 - 1 || (r > 0 && n > files[r - 1].ckpt.head.size(0)))
      throw Error(files[r].path + ": 'state_dict_softmax_fc.weight' holds " + std::to_string(n) +
                  " classes beside rank 0's " + std::to_string(n0) +
                  ": not Partial FC shards of one head (are the files in rank order?)");
    shards.push_back(files[r].ckpt.head.to(torch::kFloat32));
  }
  return torch::cat(shards, 0).contiguous();
}

}  // namespace

std::string ImportResult::summary() const {
  std::string s;
  if (epoch || global_step) {
    s += "arcface_torch checkpoint";
    if (epoch) s += ", epoch " + std::to_string(*epoch);
    if (global_step) s += ", global step " + std::to_string(*global_step);
    s += "; ";
  }
  if (head.defined())
    s += "head " + std::to_string(head.size(0)) + " classes x " + std::to_string(head.size(1)) +
         " from " + std::to_string(ranks) + (ranks == 1 ? " file" : " ranks") + "; ";
  return s + "backbone: " + report.summary();
}

ImportResult importTorchFiles(const std::vector<std::string>& paths, const nn::ArchSpec& arch,
                              const nn::OpSpec& op, bool allow_partial) {
  if (paths.empty()) throw Error("import: no file to read");
  std::vector<RankFile> files;
  for (const auto& p : paths) files.push_back({p, io::readTorchCheckpoint(p)});
  if (files.size() > 1) {
    for (const auto& f : files)
      if (!f.ckpt.training)
        throw Error(f.path +
                    ": a plain state_dict; several files must be the arcface_torch "
                    "checkpoints (checkpoint_gpu_<rank>.pt) of one run's ranks");
    files = inRankOrder(std::move(files));
    for (const auto& f : files)
      if (f.ckpt.epoch != files[0].ckpt.epoch || f.ckpt.global_step != files[0].ckpt.global_step)
        throw Error(f.path + ": epoch / global_step differ from " + files[0].path +
                    "'s: not one save of one run (" + names(files) + ")");
  }
  ImportResult out;
  out.model = nn::makeBackbone(arch, op);
  out.report = io::loadStateDict(*out.model, files[0].ckpt.backbone, allow_partial, files[0].path);
  out.head = assembleHead(files, out.model->embeddingDim(), out.ranks);
  out.epoch = files[0].ckpt.epoch;
  out.global_step = files[0].ckpt.global_step;
  out.model->eval();
  return out;
}

}  // namespace msconv::model
