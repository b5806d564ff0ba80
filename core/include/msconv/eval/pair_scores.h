// Per-pair results of an evaluation: each pair's (for IJB, each template pair's) score and label
// for one model on one set. An evaluation keeps them in the workspace, so that DET curves,
// failure lists and model-against-model comparisons need no second embedding pass.
//
// Kept as WS/runs/NAME/scores/CKPT-STEM.SET.scores for a run's checkpoint and as
// WS/scores/CKPT-STEM-HASH/SET.scores for a checkpoint from elsewhere; each file records the
// checkpoint's and the set's size and modification time, and is recomputed when either changed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace msconv::workspace {
class Workspace;
}

namespace msconv::eval {

struct SetEvaluation;

struct PairScores {
  std::string set;         // the set's name: a .bin's stem, an IJB set's name (ijbc)
  std::string set_path;    // the .bin file or the IJB folder
  std::string checkpoint;  // the model's checkpoint file
  bool is_ijb = false;
  std::vector<float> score;    // cosine similarity, higher = more alike
  std::vector<uint8_t> label;  // 1 genuine, 0 impostor
  // Pair sets: the squared L2 distance the 10-fold protocol thresholds ("same" when dist <
  // threshold), each pair's fold and that fold's threshold (chosen on the other nine folds).
  std::vector<double> dist;
  std::vector<uint8_t> fold;
  std::vector<double> fold_thresholds;
  // IJB: each pair's two template ids.
  std::vector<int64_t> t1, t2;
  size_t size() const { return score.size(); }
};

// The per-pair results of one evaluated set.
PairScores pairScoresOf(const SetEvaluation& set, const std::string& checkpoint);

// Binary file: the magic "MSCPAIR1", the header's length (uint64, little-endian), a JSON header
// (set, set_path, checkpoint, is_ijb, key, pairs, folds), the arrays (score float32, label uint8,
// then dist float64, fold uint8 and fold_thresholds float64 for pair sets, t1 and t2 int64 for
// IJB) and a 64-bit checksum of them; written through a temporary file. Throws msconv::Error
// naming the file.
void writePairScores(const std::string& path, const PairScores& scores, const std::string& key);
// Reads one; nullopt when its key differs from `key` (the checkpoint or set changed). A file
// that is not a scores file, or is cut short, is an error naming it.
std::optional<PairScores> readPairScores(const std::string& path, const std::string& key = {});

// One line per pair: "pair,score,label" (+ ",dist,fold,fold_threshold" for pair sets,
// + ",template1,template2" for IJB), with a header. Through a temporary file.
void writePairsCsv(const std::string& path, const PairScores& scores);
// Reads what writePairsCsv wrote. Throws msconv::Error naming the file and line.
PairScores readPairsCsv(const std::string& path);

// Throws msconv::Error naming `file` when `scores` is not of a set with these labels (another
// count, or a label that differs: a pairs file of a different set).
void checkSameSet(const PairScores& scores, const std::vector<uint8_t>& labels,
                  const std::string& file);

// Where a workspace keeps a checkpoint's scores on a set, and the key the file must carry: the
// checkpoint's and the set's absolute path, size and modification time (an IJB folder: those of
// its meta/ files), and `options` (what else changes the scores: the IJB template options).
std::string pairScoresFile(const workspace::Workspace& ws, const std::string& checkpoint,
                           const std::string& set_name);
std::string pairScoresKey(const std::string& checkpoint, const std::string& set_path,
                          const std::string& options = {});

}  // namespace msconv::eval
