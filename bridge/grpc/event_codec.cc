#include "bridge/grpc/event_codec.h"

#include <google/protobuf/io/coded_stream.h>
#include <grpc/slice.h>

#include "bridge/v1/bridge.pb.h"

namespace bridge::grpc_frontend {
namespace {

using google::protobuf::io::CodedOutputStream;

// EventBatch.events: field 1, length-delimited.
constexpr uint8_t kEventsTag = (1 << 3) | 2;

// What the message slot holds: the element's one slice, the Event within it as the buffer
// a Subscribe stream writes, and the element alone as a batch.
struct GrpcEncoding {
  ::grpc::Slice element;
  ::grpc::ByteBuffer event;
  ::grpc::ByteBuffer batch;
};

// Serializes `event` into one gRPC slice, preceded by its element prefix when `element`
// is true: no intermediate std::string. Returns the slice and the prefix's size.
::grpc::Slice Serialize(const google::protobuf::MessageLite& event, bool element,
                        size_t* prefix_size) {
  const size_t size = event.ByteSizeLong();
  const size_t prefix = element ? ElementSize(static_cast<uint32_t>(size)) - size : 0;
  grpc_slice raw = grpc_slice_malloc(prefix + size);
  uint8_t* out = GRPC_SLICE_START_PTR(raw);
  if (element) {
    *out++ = kEventsTag;
    out = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(size), out);
  }
  event.SerializeWithCachedSizesToArray(out);
  *prefix_size = prefix;
  return ::grpc::Slice(raw, ::grpc::Slice::STEAL_REF);
}

const GrpcEncoding& MessageEncoding(const hub::Message& message) {
  return message.Encoded<GrpcEncoding>(kGrpcEncoding, [](const hub::Message& m) {
    v1::Event event;
    v1::Message* out = event.mutable_message();
    out->set_channel(m.channel());
    out->set_pattern(m.pattern());
    out->set_payload(m.payload());
    out->set_seq(m.seq());
    if (m.offset() > 0) {
      out->set_offset(m.offset());
      out->set_epoch(m.position().epoch);
      out->set_recovered(m.recovered());
    }
    size_t prefix = 0;
    GrpcEncoding encoding{Serialize(event, /*element=*/true, &prefix), {}, {}};
    // A sub-slice shares the element's reference count (a slice small enough to be
    // inlined is copied, a few bytes).
    ::grpc::Slice tail = encoding.element.sub(prefix, encoding.element.size());
    encoding.event = ::grpc::ByteBuffer(&tail, 1);
    encoding.batch = ::grpc::ByteBuffer(&encoding.element, 1);
    return encoding;
  });
}

v1::Event ControlEvent(const hub::Event& event) {
  v1::Event out;
  if (event.type == hub::Event::Type::kSubscribed) {
    if (event.topic.is_pattern()) {
      out.mutable_subscribed()->set_pattern(event.topic.name);
    } else {
      out.mutable_subscribed()->set_channel(event.topic.name);
    }
  } else {
    v1::Gap* gap = out.mutable_gap();
    if (event.topic.is_pattern()) {
      gap->set_pattern(event.topic.name);
    } else {
      gap->set_channel(event.topic.name);
    }
    gap->set_reason(event.reason);
    gap->set_dropped(event.dropped);
  }
  return out;
}

}  // namespace

size_t ElementSize(uint32_t event_size) {
  return 1 + CodedOutputStream::VarintSize32(event_size) + event_size;
}

const ::grpc::ByteBuffer& EncodeMessage(const hub::Message& message) {
  return MessageEncoding(message).event;
}

const ::grpc::Slice& EncodeMessageElement(const hub::Message& message) {
  return MessageEncoding(message).element;
}

const ::grpc::ByteBuffer& EncodeMessageBatch(const hub::Message& message) {
  return MessageEncoding(message).batch;
}

::grpc::ByteBuffer EncodeControl(const hub::Event& event) {
  size_t prefix = 0;
  ::grpc::Slice slice = Serialize(ControlEvent(event), /*element=*/false, &prefix);
  return ::grpc::ByteBuffer(&slice, 1);
}

::grpc::Slice EncodeControlElement(const hub::Event& event) {
  size_t prefix = 0;
  return Serialize(ControlEvent(event), /*element=*/true, &prefix);
}

}  // namespace bridge::grpc_frontend
