#include "args.h"

#include "msconv/workspace/workspace.h"

#include "msconv/error.h"

namespace msconv::cli {

Args::Args(const std::vector<std::string>& argv, std::vector<OptionDecl> decls,
           std::string synopsis)
    : decls_(std::move(decls)) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.size() < 2 || a[0] != '-' || a == "--") {
      positionals_.push_back(a);
      continue;
    }
    std::string key = a, val;
    bool inline_value = false;
    if (const auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      key = a.substr(0, eq);
      val = a.substr(eq + 1);
      inline_value = true;
    }
    const OptionDecl* decl = nullptr;
    for (const auto& d : decls_)
      if (d.name == key || (!d.alias.empty() && d.alias == key)) decl = &d;
    if (!decl && key == "-h")  // -h is --help where the command declares its own --help
      for (const auto& d : decls_)
        if (d.name == "--help") decl = &d;
    if (!decl && (key == "--help" || key == "-h")) throw HelpRequested{synopsis, usage()};
    if (!decl) throw Error("unknown option '" + key + "' (see --help)");
    if (decl->takes_value) {
      if (!inline_value) {
        if (i + 1 >= argv.size()) throw Error("option '" + key + "' needs a value");
        val = argv[++i];
      }
      values_[decl->name].push_back(val);
    } else {
      if (inline_value) throw Error("option '" + key + "' takes no value");
      values_[decl->name].push_back("1");
    }
  }
}

bool Args::flag(const std::string& name) const {
  return values_.count(name) > 0;
}

std::optional<std::string> Args::value(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Args::values(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::required(const std::string& name) const {
  auto v = value(name);
  if (!v) throw Error("missing required option '" + name + "' (see --help)");
  return *v;
}

int Args::integer(const std::string& name, int fallback) const {
  auto v = value(name);
  if (!v) return fallback;
  try {
    size_t used = 0;
    const int n = std::stoi(*v, &used);
    if (used == v->size()) return n;
  } catch (const std::exception&) {
  }
  throw Error("option '" + name + "' wants an integer, got '" + *v + "'");
}

std::string Args::usage() const {
  std::string out;
  for (const auto& d : decls_) {
    std::string left =
        "  " + (d.alias.empty() ? "" : d.alias + ", ") + d.name + (d.takes_value ? " VALUE" : "");
    if (left.size() < 28) left.resize(28, ' ');
    out += left + " " + d.help + "\n";
  }
  return out;
}

std::string resolveCheckpoint(const Args& args, const std::string& item) {
  const workspace::Workspace ws(args.value("--workspace").value_or(workspace::kDefaultWorkspace));
  try {
    return ws.resolveCheckpoint(item);
  } catch (const Error& e) {
    throw Error(std::string("--checkpoint: ") + e.what());
  }
}

std::vector<std::string> splitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  for (char c : s) {
    if (c != ',') {
      item += c;
    } else if (!item.empty()) {
      out.push_back(item);
      item.clear();
    }
  }
  if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace msconv::cli
