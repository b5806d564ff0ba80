// PyTorch files into MSConv Lab models: a backbone state_dict (model.pt), or an arcface_torch
// training checkpoint per rank (checkpoint_gpu_<rank>.pt), whose class-centre shards are
// assembled into one head so that identity targets work on the imported model.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "msconv/io/state_dict.h"
#include "msconv/nn/backbone.h"

namespace msconv::model {

struct ImportResult {
  nn::Backbone model;     // weights loaded, eval mode
  torch::Tensor head;     // classes x embedding, undefined when the files hold none
  io::LoadReport report;  // the backbone's load
  std::optional<int64_t> epoch, global_step;
  int ranks = 0;                // files whose head shards were assembled (0: no head)
  std::string summary() const;  // one line: what was found and loaded
};

// Reads `files` (one state_dict or checkpoint, or one arcface_torch checkpoint per rank) into a
// new backbone of `arch` / `op`. Several files must be the checkpoints of one run's ranks (named
// checkpoint_gpu_<rank>.pt, every rank from 0, or given in rank order otherwise) with one epoch
// and step: the backbone is rank 0's, the head the ranks' shards in rank order (Partial FC's
// split: shard sizes differ by at most one, larger first); identical heads on every rank are one
// replicated head. Throws msconv::Error naming the file and key; nothing is written.
ImportResult importTorchFiles(const std::vector<std::string>& files, const nn::ArchSpec& arch,
                              const nn::OpSpec& op, bool allow_partial);

}  // namespace msconv::model
