#ifndef BRIDGE_CLIENTS_CLI_SUBSCRIBE_COMMAND_H_
#define BRIDGE_CLIENTS_CLI_SUBSCRIBE_COMMAND_H_

#include <ostream>

#include "clients/cli/command_line.h"
#include "clients/cli/stop_signal.h"

namespace bridgectl {

// `bridgectl subscribe`: prints every event of a Subscribe stream, one line each, to
// `out` (flushed per line, for pipes); with --reconnect, opens a new stream with backoff
// whenever one is lost for a reason that may pass. Returns the exit status.
int RunSubscribe(const Options& options, StopSignal& stop, std::ostream& out, std::ostream& err);

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_SUBSCRIBE_COMMAND_H_
