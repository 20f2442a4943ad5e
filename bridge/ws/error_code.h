#ifndef BRIDGE_WS_ERROR_CODE_H_
#define BRIDGE_WS_ERROR_CODE_H_

#include <string_view>

namespace bridge::ws {

// Why the server sent an `error` frame. The names (ErrorCodeName) are part of the public
// WebSocket contract (docs/WEBSOCKET.md): clients switch on them, so never rename one.
enum class ErrorCode {
  kBadJson,               // not JSON, or not a JSON object
  kUnknownOp,             // "op" missing or not one the server knows
  kBadField,              // a field missing, of the wrong type, or out of range
  kBadChannel,            // an empty, over-long or otherwise invalid channel or pattern
  kTooManySubscriptions,  // past the per-socket subscription limit
  kPublishForbidden,      // publishing is off on this server, or the token may not publish there
  kPublishFailed,         // Redis did not take the message
  kBinaryUnsupported,     // the client sent a binary frame
  kRateLimited,           // the client sent frames too fast; the socket closes (1008)
  kSlowConsumer,          // the client read too slowly; the socket closes (1008)
  kUnavailable,           // the server cannot serve the request right now
  kForbidden,             // the token, or Redis (an ACL), does not allow a channel or pattern
  kTooManyTopics,         // the server holds its limit of channels plus patterns (--max_topics)
  kNotDurable,            // a history request for a channel that keeps no history here
  kHistoryFailed,         // Redis did not answer a history read
};

constexpr std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadJson:
      return "bad_json";
    case ErrorCode::kUnknownOp:
      return "unknown_op";
    case ErrorCode::kBadField:
      return "bad_field";
    case ErrorCode::kBadChannel:
      return "bad_channel";
    case ErrorCode::kTooManySubscriptions:
      return "too_many_subscriptions";
    case ErrorCode::kPublishForbidden:
      return "publish_forbidden";
    case ErrorCode::kPublishFailed:
      return "publish_failed";
    case ErrorCode::kBinaryUnsupported:
      return "binary_unsupported";
    case ErrorCode::kRateLimited:
      return "rate_limited";
    case ErrorCode::kSlowConsumer:
      return "slow_consumer";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kForbidden:
      return "forbidden";
    case ErrorCode::kTooManyTopics:
      return "too_many_topics";
    case ErrorCode::kNotDurable:
      return "not_durable";
    case ErrorCode::kHistoryFailed:
      return "history_failed";
  }
  return "unknown";
}

}  // namespace bridge::ws

#endif  // BRIDGE_WS_ERROR_CODE_H_
