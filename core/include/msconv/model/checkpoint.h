// MSConv Lab's own checkpoint: a LibTorch archive holding the model's weights with the description
// needed to rebuild it (architecture and operator), so a checkpoint alone is enough. Written
// atomically: a temporary file beside the target, then a rename.
#pragma once

#include <functional>
#include <string>

#include "msconv/nn/backbone.h"

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace msconv::model {

inline constexpr const char* kCheckpointFormat = "msconv-lab-checkpoint";
// Version 2 records the PReLU slope shape ("prelu": "shared" or "channel") and the architecture's
// canonical text; version 1 files hold one slope per channel in every frame and a preset name.
inline constexpr int kCheckpointVersion = 2;

// Writes `archive` to `path` through a temporary file and a rename, so an interrupted write never
// leaves a half-written file in place. Throws msconv::Error naming the path.
void saveArchiveAtomically(torch::serialize::OutputArchive& archive, const std::string& path);

// Writes what every MSConv Lab checkpoint holds: the format marker, version, arch (canonical
// text), prelu (slope shape), op and the model's weights ("model"). Training checkpoints add their
// state beside these entries.
void writeModelEntries(torch::serialize::OutputArchive& archive, nn::BackboneImpl& model);

// Saves the backbone's weights (parameters and buffers) with its arch and op; with `head`
// (classes x embedding class centres, as an imported training checkpoint has), also a "head"
// entry as training checkpoints hold it, for identity targets.
void saveModel(const std::string& path, nn::BackboneImpl& model, const at::Tensor& head = {});

// Opens `path` as an MSConv Lab checkpoint: readable, with the format marker, of a version this
// build understands. Throws msconv::Error naming the file otherwise.
void openCheckpoint(const std::string& path, torch::serialize::InputArchive& archive);

// The backbone an open checkpoint describes. A version-1 file (no "prelu" entry) is read as what
// it is: per-channel PReLU slopes in every frame.
struct ModelDescription {
  nn::ArchSpec arch;
  nn::OpSpec op;
};
ModelDescription describeModel(torch::serialize::InputArchive& archive, const std::string& path);

struct LoadedModel {
  nn::Backbone model;
  std::string arch;  // canonical text (nn::ArchSpec::str())
  std::string op;
};

// Rebuilds the model a checkpoint describes and loads its weights, in eval mode. Throws
// msconv::Error naming the file for unreadable, foreign or inconsistent files.
LoadedModel loadModel(const std::string& path);

}  // namespace msconv::model
