// MSConv Lab's own checkpoint: a LibTorch archive holding the model's weights with the description
// needed to rebuild it (architecture and operator), so a checkpoint alone is enough. Written
// atomically: a temporary file beside the target, then a rename.
#pragma once

#include <functional>
#include <string>

#include "msconv/nn/backbone.h"

namespace torch::serialize {
class OutputArchive;
}

namespace msconv::model {

inline constexpr const char* kCheckpointFormat = "msconv-lab-checkpoint";
inline constexpr int kCheckpointVersion = 1;

// Writes `archive` to `path` through a temporary file and a rename, so an interrupted write never
// leaves a half-written file in place. Throws msconv::Error naming the path.
void saveArchiveAtomically(torch::serialize::OutputArchive& archive, const std::string& path);

// Writes what every MSConv Lab checkpoint holds: the format marker, version, arch, op and the
// model's weights ("model"). Training checkpoints add their state beside these entries.
void writeModelEntries(torch::serialize::OutputArchive& archive, nn::BackboneImpl& model);

// Saves the backbone's weights (parameters and buffers) with its arch and op.
void saveModel(const std::string& path, nn::BackboneImpl& model);

struct LoadedModel {
  nn::Backbone model;
  std::string arch;
  std::string op;
};

// Rebuilds the model a checkpoint describes and loads its weights, in eval mode. Throws
// msconv::Error naming the file for unreadable, foreign or inconsistent files.
LoadedModel loadModel(const std::string& path);

}  // namespace msconv::model
