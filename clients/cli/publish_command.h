#ifndef BRIDGE_CLIENTS_CLI_PUBLISH_COMMAND_H_
#define BRIDGE_CLIENTS_CLI_PUBLISH_COMMAND_H_

#include <ostream>

#include "clients/cli/command_line.h"
#include "clients/cli/stop_signal.h"

namespace bridgectl {

// `bridgectl publish`: one Publish call with the message, or everything read from `in_fd`
// up to its end (bytes as they are) when the command line gave none. A stop signal ends
// the wait for either and exits 0. Returns the exit status.
int RunPublish(const Options& options, StopSignal& stop, int in_fd, std::ostream& out,
               std::ostream& err);

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_PUBLISH_COMMAND_H_
