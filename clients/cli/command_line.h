#ifndef BRIDGE_CLIENTS_CLI_COMMAND_LINE_H_
#define BRIDGE_CLIENTS_CLI_COMMAND_LINE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace bridgectl {

enum class Command { kHelp, kSubscribe, kPublish, kHistory, kHealth };

// Everything bridgectl was asked to do, parsed from argv and the environment.
struct Options {
  Command command = Command::kHelp;
  // gRPC target: host:port, or anything grpc::CreateChannel accepts (unix:/path, dns:///...).
  std::string addr = "localhost:50051";
  bool json = false;
  // Sent as `authorization: Bearer <token>` on every call, when not empty: what a Bridge
  // with an access file asks for. Never printed.
  std::string token;
  // Deadline of unary calls, and of health --wait.
  absl::Duration timeout = absl::Seconds(10);

  // subscribe
  std::vector<std::string> channels;
  std::vector<std::string> patterns;
  bool reconnect = false;
  // Exit 0 after this many messages (0: never).
  long long count = 0;

  // publish and history: the channel.
  std::string channel;
  // publish: the message, or nullopt to read it from standard input.
  std::optional<std::string> message;
  // The publish's idempotency key; empty for none.
  std::string key;

  // history: at most this many messages (0: the server's limit), the latest ones, or
  // with `since_offset` those after that offset of epoch `since_epoch`.
  uint32_t limit = 0;
  std::optional<uint64_t> since_offset;
  std::string since_epoch;

  // health
  std::string service;
  bool wait = false;
  // health: follow the status until stopped; no deadline.
  bool watch = false;
};

// The full --help text.
const char* Usage();

// Parses argv (argv[0] excluded). `env_addr` is $BRIDGE_ADDR and `env_token` $BRIDGE_TOKEN
// (nullptr or empty when unset); --addr and --token win over them. Errors are usage
// errors, worded for the user, and never quote the token.
absl::StatusOr<Options> ParseCommandLine(const std::vector<std::string>& args, const char* env_addr,
                                         const char* env_token);

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_COMMAND_LINE_H_
