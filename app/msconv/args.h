// A small command-line parser for the msconv subcommands: declared options only, values by
// "--key value" or "--key=value", repeated options collected in order, unknown options rejected.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace msconv::cli {

struct OptionDecl {
  std::string name;   // "--arch"
  bool takes_value;   // false: a flag
  std::string help;   // one line
  std::string alias;  // "-o"
};

// Thrown by Args for --help / -h where the command declares no --help of its own: main prints
// `text` (the synopsis and the options) on stdout and exits 0.
struct HelpRequested {
  std::string synopsis;  // "msconv data synth -o DIR [...]", or "" (main writes one)
  std::string options;   // Args::usage()
};

class Args {
 public:
  // Throws msconv::Error for unknown options and options missing their value, HelpRequested
  // for an undeclared --help or -h. `synopsis`: the first line of that help, after "usage: ".
  Args(const std::vector<std::string>& argv, std::vector<OptionDecl> decls,
       std::string synopsis = "");

  bool flag(const std::string& name) const;
  std::optional<std::string> value(const std::string& name) const;  // the last one given
  std::vector<std::string> values(const std::string& name) const;   // all, in order
  std::string required(const std::string& name) const;              // Error when missing
  int integer(const std::string& name, int fallback) const;         // Error when not an integer
  const std::vector<std::string>& positionals() const { return positionals_; }
  std::string usage() const;

 private:
  std::vector<OptionDecl> decls_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positionals_;
};

// A --checkpoint value: a checkpoint file as it is, or a run (name or id) of the --workspace
// (default ./runs): its best, else last, checkpoint. Throws msconv::Error saying which is missing.
std::string resolveCheckpoint(const Args& args, const std::string& item);

// "a,b,,c" -> {"a", "b", "c"}: an option's comma list, empty items dropped.
std::vector<std::string> splitCommas(const std::string& s);

}  // namespace msconv::cli
