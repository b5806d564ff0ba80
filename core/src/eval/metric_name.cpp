#include "msconv/eval/metric_name.h"

#include <cstdio>
#include <cstdlib>

namespace msconv::eval {

std::string MetricName::farText(double far) {
  char b[32];
  std::snprintf(b, sizeof b, "%.0e", far);
  return b;
}

std::string MetricName::metric() const {
  switch (kind) {
    case Kind::kAccuracy:
      return "accuracy";
    case Kind::kAccuracyStd:
      return "accuracy_std";
    case Kind::kXNorm:
      return "xnorm";
    case Kind::kTarAtFar:
      return "tar@far=" + farText(far);
    case Kind::kAuc:
      return "auc";
  }
  return {};
}

std::string MetricName::label() const {
  return set + "/" + metric();
}

std::string MetricName::str() const {
  return "val/" + label();
}

std::optional<MetricName> MetricName::parse(const std::string& key) {
  std::string rest = key.rfind("val/", 0) == 0 ? key.substr(4) : key;
  const auto slash = rest.rfind('/');
  if (slash == std::string::npos || slash == 0) return std::nullopt;
  MetricName m;
  m.set = rest.substr(0, slash);
  const std::string metric = rest.substr(slash + 1);
  if (metric == "accuracy") {
    m.kind = Kind::kAccuracy;
  } else if (metric == "accuracy_std") {
    m.kind = Kind::kAccuracyStd;
  } else if (metric == "xnorm") {
    m.kind = Kind::kXNorm;
  } else if (metric == "auc") {
    m.kind = Kind::kAuc;
  } else if (metric.rfind("tar@far=", 0) == 0) {
    const std::string v = metric.substr(8);
    char* end = nullptr;
    m.kind = Kind::kTarAtFar;
    m.far = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(m.far > 0 && m.far <= 1)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  return m;
}

std::string faithfulnessLabel(const std::string& set, const std::string& method,
                              const std::string& metric) {
  return set + "/faith." + method + "." + metric;
}

bool isFaithfulnessLabel(const std::string& label) {
  const auto slash = label.rfind('/');
  return slash != std::string::npos && label.compare(slash + 1, 6, "faith.") == 0;
}

bool lowerIsBetter(const std::string& metric) {
  if (metric == "params_m" || metric == "gmacs") return true;
  if (!isFaithfulnessLabel(metric)) return false;
  auto endsWith = [&](const char* tail) {
    const std::string t(tail);
    return metric.size() >= t.size() && metric.compare(metric.size() - t.size(), t.size(), t) == 0;
  };
  return endsWith(".deletion") || endsWith(".drop");
}

}  // namespace msconv::eval
