// The name of a verification metric of one pair set: the store's key, the charts' series, the
// CLI's columns and the report's cells all come from this one type. Text form:
//   val/SET/accuracy, val/SET/accuracy_std, val/SET/xnorm, val/SET/tar@far=1e-03, val/SET/auc
// (SET: the pair set's file name, "lfw.bin"). No LibTorch: the workbench's widgets use it.
#pragma once

#include <optional>
#include <string>

namespace msconv::eval {

struct MetricName {
  enum class Kind { kAccuracy, kAccuracyStd, kXNorm, kTarAtFar, kAuc };  // kAuc: the cosine ROC's
  std::string set;
  Kind kind = Kind::kAccuracy;
  double far = 0;  // kTarAtFar only

  static MetricName accuracy(std::string set) { return {std::move(set), Kind::kAccuracy, 0}; }
  static MetricName tarAtFar(std::string set, double far) {
    return {std::move(set), Kind::kTarAtFar, far};
  }
  // "val/SET/..." (the store's key).
  std::string str() const;
  // "SET/..." (a column or legend name).
  std::string label() const;
  // "accuracy", "tar@far=1e-03", ...
  std::string metric() const;
  // Accuracy and TAR@FAR: what comparison tables show (not the std or XNorm).
  bool compared() const { return kind == Kind::kAccuracy || kind == Kind::kTarAtFar; }
  // A key in either text form; nullopt for anything else (loss, lr, ...).
  static std::optional<MetricName> parse(const std::string& key);
  // A FAR as the names write it: 1e-03.
  static std::string farText(double far);

  bool operator==(const MetricName& o) const { return str() == o.str(); }
  bool operator<(const MetricName& o) const { return str() < o.str(); }
};

// A study report's CAM faithfulness metric of a run's checkpoint (`msconv study report
// --faithfulness SET`): "SET/faith.METHOD.METRIC", METRIC one of deletion (deletion AUC),
// insertion (insertion AUC), road (ROAD combined), drop (average drop, percent); the mean over
// the layers' CAMs (inspect::FaithfulnessRow's "mean" row).
std::string faithfulnessLabel(const std::string& set, const std::string& method,
                              const std::string& metric);
bool isFaithfulnessLabel(const std::string& label);
// Whether a smaller value is the better one in a study's tables: parameters, MACs, the
// deletion AUC and the average drop.
bool lowerIsBetter(const std::string& metric);

}  // namespace msconv::eval
