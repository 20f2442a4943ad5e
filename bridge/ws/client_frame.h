#ifndef BRIDGE_WS_CLIENT_FRAME_H_
#define BRIDGE_WS_CLIENT_FRAME_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "bridge/hub/history.h"
#include "bridge/ws/error_code.h"

namespace bridge::ws {

// The commands a browser may send, one JSON text frame each (docs/WEBSOCKET.md).
struct SubscribeCommand {
  std::vector<std::string> channels;
  std::vector<std::string> patterns;
  // "resume": durable channels with the last position the client saw.
  std::vector<std::pair<std::string, hub::StreamPosition>> resume;
};
struct UnsubscribeCommand {
  std::vector<std::string> channels;
  std::vector<std::string> patterns;
};
struct PublishCommand {
  std::string channel;
  // Raw bytes: "data" as UTF-8, or "data_b64" decoded.
  std::string payload;
  // Empty when the frame has none: see hub::Hub::Publish.
  std::string idempotency_key;
};
struct PingCommand {};
struct HistoryCommand {
  std::string channel;
  // 0: the server's limit.
  size_t limit = 0;
  std::optional<hub::StreamPosition> since;
  // Echoed in the answer; empty when the frame has none.
  std::string id;
};

// A frame the server refuses, with the code the client sees.
struct ClientError {
  ErrorCode code;
  std::string message;
  // The frame was a publish (a history request): the error is its answer, in the order
  // of those requests.
  bool publish = false;
  bool history = false;
};

// One parsed frame: a command, or why it was refused.
using ClientFrame = std::variant<ClientError, SubscribeCommand, UnsubscribeCommand, PublishCommand,
                                 PingCommand, HistoryCommand>;

struct ClientFrameLimits {
  // Longest channel or pattern name, in bytes (the hub's limit too).
  size_t max_name_length = 256;
  // Most names one subscribe or unsubscribe frame may carry ("resume" included).
  size_t max_names = 1024;
};

// Parses one client text frame. Never throws and never trusts the input: this is the
// function the fuzz target drives. Unknown fields are ignored so that clients may send
// newer fields to older servers.
ClientFrame ParseClientFrame(std::string_view text, const ClientFrameLimits& limits);

}  // namespace bridge::ws

#endif  // BRIDGE_WS_CLIENT_FRAME_H_
