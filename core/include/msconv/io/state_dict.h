// PyTorch state_dicts: reading torch.save() zip archives without Python (the archive through
// LibTorch's PyTorchStreamReader, data.pkl through the restricted pickle reader), and loading
// named tensors into a module with a report of missing, unexpected and mis-shaped keys.
#pragma once

#include <torch/nn/module.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace msconv::io {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Reads a file written by torch.save(obj, f) (zip format) where obj is a (nested) dict of tensors,
// such as model.state_dict(). Nested dicts are flattened with '.' ("state_dict.conv1.weight" ...),
// except that a top-level {"state_dict": {...}} wrapper is unwrapped. Throws msconv::Error naming
// the file for anything else.
NamedTensors readTorchFile(const std::string& path);

// What a torch.save() file holds for a backbone, as researchers have them:
//   - a state_dict (arcface_torch's model.pt: torch.save(backbone.state_dict(), f)), or one
//     wrapped as {"state_dict": {...}};
//   - an arcface_torch training checkpoint (checkpoint_gpu_<rank>.pt, save_all_states): a dict of
//     epoch, global_step, state_dict_backbone, state_dict_softmax_fc (this rank's shard of the
//     class centres, "weight"), state_optimizer and state_lr_scheduler.
// The whole pickle is read by the restricted reader (the optimizer's nested dicts, ints, floats
// and tensors included) without executing anything; only the backbone's and head's tensors are
// rebuilt. Throws msconv::Error naming the file and the key for anything else.
struct TorchCheckpoint {
  NamedTensors backbone;
  bool training = false;         // an arcface_torch checkpoint dict
  torch::Tensor head;            // state_dict_softmax_fc.weight (undefined when absent)
  std::optional<int64_t> epoch;  // training checkpoints only
  std::optional<int64_t> global_step;
  bool optimizer = false, scheduler = false;  // whether their states are in the file
};
TorchCheckpoint readTorchCheckpoint(const std::string& path);

struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the state_dict
  std::vector<std::string> unexpected;  // in the state_dict, not in the module
  std::vector<std::string> mismatched;  // "name: file [a, b] vs model [c, d]"
  int loaded = 0;
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string summary() const;  // one line
};

// Copies every tensor whose name and shape match into the module's parameters and buffers.
// A "module." prefix (DataParallel) is stripped; BatchNorm's num_batches_tracked may be absent.
// Unless allow_partial, any missing, unexpected or mis-shaped key is an error (msconv::Error
// listing them) and the module is left untouched.
LoadReport loadStateDict(torch::nn::Module& module, const NamedTensors& tensors, bool allow_partial,
                         const std::string& source);

}  // namespace msconv::io
