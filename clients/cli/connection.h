#ifndef BRIDGE_CLIENTS_CLI_CONNECTION_H_
#define BRIDGE_CLIENTS_CLI_CONNECTION_H_

#include <memory>
#include <string>

#include "grpcpp/channel.h"
#include "grpcpp/support/status.h"

namespace bridgectl {

// Exit statuses, as --help describes them.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// An insecure channel to Bridge at `addr` (host:port, unix:/path, dns:///host:port).
std::shared_ptr<grpc::Channel> ConnectToBridge(const std::string& addr);

// "UNAVAILABLE", "INVALID_ARGUMENT", ...
const char* StatusCodeName(grpc::StatusCode code);

// "CODE: message", as bridgectl prints a failed call.
std::string Describe(const grpc::Status& status);

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_CONNECTION_H_
