// bridgectl: the command-line client of Bridge. Parses the command line and runs one
// command; see command_line.cc for the usage text.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "clients/cli/command_line.h"
#include "clients/cli/connection.h"
#include "clients/cli/health_command.h"
#include "clients/cli/history_command.h"
#include "clients/cli/publish_command.h"
#include "clients/cli/stop_signal.h"
#include "clients/cli/subscribe_command.h"

int main(int argc, char** argv) {
  // First, before gRPC starts any thread: see StopSignal.
  bridgectl::StopSignal stop;
  absl::StatusOr<bridgectl::Options> options =
      bridgectl::ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc),
                                  std::getenv("BRIDGE_ADDR"), std::getenv("BRIDGE_TOKEN"));
  if (!options.ok()) {
    std::cerr << "bridgectl: " << options.status().message() << '\n';
    return bridgectl::kExitUsage;
  }
  switch (options->command) {
    case bridgectl::Command::kHelp:
      std::cout << bridgectl::Usage();
      return bridgectl::kExitOk;
    case bridgectl::Command::kSubscribe:
      return bridgectl::RunSubscribe(*options, stop, std::cout, std::cerr);
    case bridgectl::Command::kPublish:
      return bridgectl::RunPublish(*options, stop, STDIN_FILENO, std::cout, std::cerr);
    case bridgectl::Command::kHistory:
      return bridgectl::RunHistory(*options, stop, std::cout, std::cerr);
    case bridgectl::Command::kHealth:
      return bridgectl::RunHealth(*options, stop, std::cout, std::cerr);
  }
  return bridgectl::kExitUsage;
}
