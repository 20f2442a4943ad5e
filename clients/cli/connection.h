#ifndef BRIDGE_CLIENTS_CLI_CONNECTION_H_
#define BRIDGE_CLIENTS_CLI_CONNECTION_H_

#include <memory>
#include <ostream>
#include <string>

#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace bridgectl {

// Exit statuses, as --help describes them.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// An insecure channel to Bridge at `addr` (host:port, unix:/path, dns:///host:port).
std::shared_ptr<grpc::Channel> ConnectToBridge(const std::string& addr);

// Adds `authorization: Bearer <token>` to the call, unless `token` is empty. Per call, not
// per channel: gRPC sends call credentials over TLS only, and Bridge listens in plaintext.
void AddAuthorization(const std::string& token, grpc::ClientContext* context);

// "UNAVAILABLE", "INVALID_ARGUMENT", ...
const char* StatusCodeName(grpc::StatusCode code);

// "CODE: message", as bridgectl prints a failed call.
std::string Describe(const grpc::Status& status);

// Prints "bridgectl: CODE: message" for a failed Subscribe or Publish, and, when the server
// wants a token and `token` (the one sent) is empty, where to give one.
void ReportCallError(const grpc::Status& status, const std::string& token, std::ostream& err);

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_CONNECTION_H_
