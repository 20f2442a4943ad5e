#include "bridge/grpc/event_codec.h"

#include <grpc/slice.h>
#include <grpcpp/support/slice.h>

#include "bridge/v1/bridge.pb.h"

namespace bridge::grpc_frontend {
namespace {

// Serializes straight into one gRPC slice: no intermediate std::string.
::grpc::ByteBuffer ToByteBuffer(const google::protobuf::MessageLite& proto) {
  const size_t size = proto.ByteSizeLong();
  grpc_slice raw = grpc_slice_malloc(size);
  proto.SerializeWithCachedSizesToArray(GRPC_SLICE_START_PTR(raw));
  ::grpc::Slice slice(raw, ::grpc::Slice::STEAL_REF);
  return ::grpc::ByteBuffer(&slice, 1);
}

}  // namespace

const ::grpc::ByteBuffer& EncodeMessage(const hub::Message& message) {
  return message.Encoded<::grpc::ByteBuffer>(kGrpcEncoding, [](const hub::Message& m) {
    v1::Event event;
    v1::Message* out = event.mutable_message();
    out->set_channel(m.channel());
    out->set_pattern(m.pattern());
    out->set_payload(m.payload());
    out->set_seq(m.seq());
    return ToByteBuffer(event);
  });
}

::grpc::ByteBuffer EncodeControl(const hub::Event& event) {
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
  return ToByteBuffer(out);
}

}  // namespace bridge::grpc_frontend
