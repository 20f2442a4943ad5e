#ifndef BRIDGE_CLIENTS_CLI_PUBLISH_COMMAND_H_
#define BRIDGE_CLIENTS_CLI_PUBLISH_COMMAND_H_

#include <istream>
#include <ostream>

#include "clients/cli/command_line.h"
#include "clients/cli/stop_signal.h"

namespace bridgectl {

// `bridgectl publish`: one Publish call with the message, or all of `in` (bytes as they
// are) when the command line gave none. Returns the exit status.
int RunPublish(const Options& options, StopSignal& stop, std::istream& in, std::ostream& out,
               std::ostream& err);

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_PUBLISH_COMMAND_H_
