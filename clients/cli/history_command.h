#ifndef BRIDGE_CLIENTS_CLI_HISTORY_COMMAND_H_
#define BRIDGE_CLIENTS_CLI_HISTORY_COMMAND_H_

#include <ostream>

#include "clients/cli/command_line.h"
#include "clients/cli/stop_signal.h"

namespace bridgectl {

// `bridgectl history`: one History call for a durable channel (the latest --limit
// messages, or those after --since/--epoch), printed by EventFormatter::History. A channel
// that is not durable on the server is its FAILED_PRECONDITION, exit status 1. Returns
// the exit status.
int RunHistory(const Options& options, StopSignal& stop, std::ostream& out, std::ostream& err);

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_HISTORY_COMMAND_H_
