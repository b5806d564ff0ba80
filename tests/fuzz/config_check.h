// What the config targets check on every configuration they manage to load: the typed settings
// can be read, the JSON the configuration prints loads back to the same configuration, and its
// architecture and operator texts survive their canonical spelling (parse(str()) == parsed).
#pragma once

#include <string>

#include "fuzz_util.h"
#include "msconv/config/config.h"
#include "msconv/error.h"
#include "msconv/nn/spec.h"

namespace msconv::fuzz {

inline void checkConfig(const config::Config& c) {
  const config::RunSettings s = c.settings();
  const std::string json = c.toJson();
  try {
    const std::string again = config::Config::fromJson(json, "printed config").toJson();
    if (again != json) violated("config: printed JSON loads to a different configuration");
  } catch (const Error& e) {
    violated(std::string("config: printed JSON does not load: ") + e.what());
  }
  try {
    const nn::ArchSpec arch = nn::parseArch(s.model.arch);
    if (nn::parseArch(arch.str()) != arch)
      violated("parseArch(str()) differs for '" + s.model.arch + "'");
    const nn::OpSpec op = s.model.op.empty() ? nn::defaultOpFor(arch) : nn::parseOpSpec(s.model.op);
    if (nn::parseOpSpec(op.str()) != op)
      violated("parseOpSpec(str()) differs for '" + s.model.op + "'");
  } catch (const Error& e) {
    violated(std::string("config: a validated architecture or operator does not parse: ") +
             e.what());
  }
}

}  // namespace msconv::fuzz
