#ifndef BRIDGE_WS_SERVER_FRAME_H_
#define BRIDGE_WS_SERVER_FRAME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "bridge/hub/hub.h"
#include "bridge/hub/message.h"
#include "bridge/hub/topic.h"
#include "bridge/ws/error_code.h"

namespace bridge::ws {

// The Message::Encoded slot that holds a message's WebSocket frame (gRPC uses 0).
inline constexpr int kWsEncodingSlot = 1;

// The frames the server sends, as JSON text (docs/WEBSOCKET.md). Built by hand rather
// than through a JSON library: MessageFrame is on the hot path, once per message.

// {"op":"message","channel":..,["pattern":..,]"seq":N,["offset":N,"epoch":..,
// ["recovered":true,]]"data":..} with "data_b64" in place of "data" when the payload is
// not valid UTF-8; the offset and epoch on durable channels only.
std::string MessageFrame(const hub::Message& message);
// {"op":"subscribed","channel":..} or {"op":"subscribed","pattern":..}.
std::string SubscribedFrame(const hub::Topic& topic);
std::string UnsubscribedFrame(const hub::Topic& topic);
// {"op":"gap","channel"|"pattern":..,"reason":..,"dropped":N}.
std::string GapFrame(const hub::Topic& topic, std::string_view reason, uint64_t dropped);
// {"op":"error","code":"forbidden","channel"|"pattern":…,"message":…,"request":"subscribe"}:
// the socket may not hold the topic (its token's grant, or Redis, refuses it).
std::string ForbiddenFrame(const hub::Topic& topic, std::string_view message);
// ForbiddenFrame for a topic Redis refused; the socket no longer holds it.
std::string RefusedFrame(const hub::Topic& topic);
// {"op":"error","code":..,"message":..[,"request":..]}: `request` names the op the error
// answers when the client pairs answers with requests ("publish").
std::string ErrorFrame(ErrorCode code, std::string_view message, std::string_view request = {});
std::string PongFrame();
// {"op":"published","channel":..,"receivers":N[,"offset":N,"epoch":..]}, or for a
// duplicate {"op":"published","channel":..,"receivers":0,"duplicate":true[,...]}.
std::string PublishedFrame(std::string_view channel, const hub::PublishResult& result);
// {"op":"history","channel":..,["id":..,]"epoch":..,"offset":N,"messages":[{"offset":N,
// "epoch":..,"data":..},..],"history_lost":B,"lost":N}.
std::string HistoryFrame(std::string_view channel, std::string_view id,
                         const hub::HistoryResult& result);

// RFC 6455 framing of one server-to-client text message: FIN and the text opcode, the
// payload length in its 7-, 16- or 64-bit form, no mask (servers never mask), then `json`.
void AppendWireTextFrame(std::string* out, std::string_view json);
std::string WireTextFrame(std::string_view json);
// MessageFrame(message) framed: the bytes every socket of the message is sent as-is.
std::string MessageWireFrame(const hub::Message& message);

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or values past
// U+10FFFF), which is what JSON text may carry.
bool IsValidUtf8(std::string_view s);
// Appends `s` as a JSON string literal, quotes included. Invalid UTF-8 sequences become
// U+FFFD: names from Redis are bytes, and the frame must stay valid JSON.
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace bridge::ws

#endif  // BRIDGE_WS_SERVER_FRAME_H_
