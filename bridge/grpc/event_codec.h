#ifndef BRIDGE_GRPC_EVENT_CODEC_H_
#define BRIDGE_GRPC_EVENT_CODEC_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstddef>
#include <cstdint>

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

// The same events as elements of a bridge.v1.EventBatch: field 1's tag, the Event's
// length as a varint, then the Event. A repeated field is nothing more on the wire, so a
// batch is these elements one after the other, and a ByteBuffer made of their slices
// carries it without copying them. A message's element is made with its Event, in one
// slice of which EncodeMessage's buffer is the tail: every stream, batched or not, refers
// to the same bytes.
const ::grpc::Slice& EncodeMessageElement(const hub::Message& message);
// An EventBatch of the message alone (its element's slice): what a batched stream that
// keeps up writes, shared as EncodeMessage's buffer is.
const ::grpc::ByteBuffer& EncodeMessageBatch(const hub::Message& message);
::grpc::Slice EncodeControlElement(const hub::Event& event);

// The size of an element holding an Event of `event_size` bytes.
size_t ElementSize(uint32_t event_size);

}  // namespace bridge::grpc_frontend

#endif  // BRIDGE_GRPC_EVENT_CODEC_H_
