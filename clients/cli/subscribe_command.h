#ifndef BRIDGE_CLIENTS_CLI_SUBSCRIBE_COMMAND_H_
#define BRIDGE_CLIENTS_CLI_SUBSCRIBE_COMMAND_H_

#include <ostream>

#include "clients/cli/command_line.h"
#include "clients/cli/stop_signal.h"
#include "grpcpp/support/status.h"

namespace bridgectl {

// `bridgectl subscribe`: prints every event of a SubscribeBatched stream (of a Subscribe
// stream when the server has no SubscribeBatched), one line each, to `out` (flushed per
// batch, for pipes); with --reconnect, opens a new stream with backoff whenever one is
// lost for a reason that may pass, resuming each durable channel after the last message
// it printed of it. Returns the exit status.
int RunSubscribe(const Options& options, StopSignal& stop, std::ostream& out, std::ostream& err);

// Whether a SubscribeBatched call that ended with `status` asks for Subscribe instead:
// the server does not know the method (UNIMPLEMENTED before any event).
bool FallBackToSubscribe(const grpc::Status& status, bool any_event);

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_SUBSCRIBE_COMMAND_H_
