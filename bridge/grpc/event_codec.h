#ifndef BRIDGE_GRPC_EVENT_CODEC_H_
#define BRIDGE_GRPC_EVENT_CODEC_H_

#include <grpcpp/support/byte_buffer.h>

#include "bridge/hub/event.h"
#include "bridge/hub/message.h"

namespace bridge::grpc_frontend {

// The slot of hub::Message::Encoded that holds the gRPC encoding.
inline constexpr int kGrpcEncoding = 0;

// Serializes a bridge.v1.Event for a hub event. Message events are encoded once per
// message and shared: the returned buffer refers to the message's cached bytes and stays
// valid as long as the message does.
const ::grpc::ByteBuffer& EncodeMessage(const hub::Message& message);
// Subscribed and Gap events are per subscriber and small; encoded each time.
::grpc::ByteBuffer EncodeControl(const hub::Event& event);

}  // namespace bridge::grpc_frontend

#endif  // BRIDGE_GRPC_EVENT_CODEC_H_
