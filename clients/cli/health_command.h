#ifndef BRIDGE_CLIENTS_CLI_HEALTH_COMMAND_H_
#define BRIDGE_CLIENTS_CLI_HEALTH_COMMAND_H_

#include <ostream>

#include "clients/cli/command_line.h"
#include "clients/cli/stop_signal.h"

namespace bridgectl {

// `bridgectl health`: grpc.health.v1.Health/Check once, or with --wait Health/Watch until
// SERVING or the deadline (waiting for the server to come up, too). Returns kExitOk only
// for SERVING; a docker-compose healthcheck relies on that.
int RunHealth(const Options& options, StopSignal& stop, std::ostream& out, std::ostream& err);

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_HEALTH_COMMAND_H_
