// The msconv subcommands. Each takes its arguments (after the subcommand name) and returns the
// process exit status; user errors are thrown as msconv::Error and printed by main.
#pragma once

#include <string>
#include <vector>

namespace msconv::cli {

using Argv = std::vector<std::string>;

int cmdInfo(const Argv& argv);
int cmdImport(const Argv& argv);
int cmdEmbed(const Argv& argv);
int cmdExport(const Argv& argv);
int cmdData(const Argv& argv);
int cmdTrain(const Argv& argv);
int cmdRuns(const Argv& argv);
int cmdEval(const Argv& argv);
int cmdCompare(const Argv& argv);
int cmdFailures(const Argv& argv);
int cmdFeatureMaps(const Argv& argv);
int cmdGradCam(const Argv& argv);
int cmdStudy(const Argv& argv);

}  // namespace msconv::cli
