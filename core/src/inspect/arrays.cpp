#include "msconv/inspect/arrays.h"

#include <torch/torch.h>

#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "msconv/atomic_file.h"
#include "msconv/error.h"
#include "msconv/io/npy.h"

namespace msconv::inspect {

std::string arrayFilePart(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_')
      out += c;
    else if (c == '+')
      out += "_plus_";
    else if (c == '*')
      out += "_times_";
    else if (c == '-')
      out += "_minus_";
    else
      out += '_';
  }
  return out;
}

ArrayFolder::ArrayFolder(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec || !std::filesystem::is_directory(dir_))
    throw Error(dir_ + ": cannot create the folder" + (ec ? ": " + ec.message() : std::string()));
}

void ArrayFolder::add(const std::string& file, const at::Tensor& array, const std::string& model,
                      const std::string& layer, const std::string& method,
                      const std::string& target) {
  const auto t = array.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const std::string path = dir_ + "/" + file;
  io::writeNpy(path, t.data_ptr<float>(), t.sizes().vec());
  nlohmann::json entry = {{"file", file},     {"model", model},    {"layer", layer},
                          {"method", method}, {"target", nullptr}, {"shape", t.sizes().vec()}};
  if (!target.empty()) entry["target"] = target;
  entries_.push_back(entry.dump());
  written_.push_back(path);
}

void ArrayFolder::add(const std::string& file, const cv::Mat& map, const std::string& model,
                      const std::string& layer, const std::string& method,
                      const std::string& target) {
  cv::Mat m;
  map.convertTo(m, CV_32F);
  m = m.clone();  // continuous
  add(file, torch::from_blob(m.data, {m.rows, m.cols}, torch::kFloat), model, layer, method,
      target);
}

void ArrayFolder::addCams(int index, const std::string& model, const CamResult& cams,
                          const std::string& method, const std::string& target) {
  const std::string prefix = "m" + std::to_string(index) + "_" + arrayFilePart(method) + "_";
  for (size_t i = 0; i < cams.cams.size(); ++i)
    add(prefix + arrayFilePart(cams.layers[i]) + ".npy", cams.cams[i], model, cams.layers[i],
        method, target);
  if (cams.cams.size() > 1) add(prefix + "mean.npy", cams.average(), model, "mean", method, target);
}

void ArrayFolder::addBranchMaps(const std::string& model, const BranchMaps& maps) {
  const std::string layer = arrayFilePart(maps.layer);
  for (size_t r = 0; r < maps.rows.size(); ++r)
    add(layer + "_" + arrayFilePart(maps.rows[r]) + ".npy", maps.maps[r], model, maps.layer,
        maps.rows[r], "");
  if (maps.gate.defined()) add(layer + "_gate.npy", maps.gate, model, maps.layer, "gate", "");
}

std::vector<std::string> ArrayFolder::finish() {
  nlohmann::json index = nlohmann::json::array();
  for (const auto& e : entries_) index.push_back(nlohmann::json::parse(e));
  const std::string path = dir_ + "/index.json";
  writeFileAtomically(path, index.dump(1) + "\n");
  auto out = written_;
  out.push_back(path);
  return out;
}

}  // namespace msconv::inspect
