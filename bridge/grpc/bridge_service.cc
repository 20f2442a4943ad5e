#include "bridge/grpc/bridge_service.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "bridge/common/log.h"
#include "bridge/grpc/call_access.h"
#include "bridge/grpc/status_util.h"
#include "bridge/grpc/subscribe_reactor.h"

namespace bridge::grpc_frontend {

BridgeService::BridgeService(hub::Hub* hub, const hub::SubscriberOptions& subscriber,
                             const auth::Access& access)
    : hub_(hub), subscriber_(subscriber), access_(access) {}

::grpc::ServerWriteReactor<::grpc::ByteBuffer>* BridgeService::Subscribe(
    ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* request) {
  return SubscribeReactor::Start(hub_, &pump_, &open_streams_, subscriber_, access_,
                                 SubscribeReactor::Form::kEvent, context, request);
}

::grpc::ServerWriteReactor<::grpc::ByteBuffer>* BridgeService::SubscribeBatched(
    ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* request) {
  return SubscribeReactor::Start(hub_, &pump_, &open_streams_, subscriber_, access_,
                                 SubscribeReactor::Form::kBatch, context, request);
}

::grpc::ServerUnaryReactor* BridgeService::Publish(::grpc::CallbackServerContext* context,
                                                   const ::grpc::ByteBuffer* raw_request,
                                                   ::grpc::ByteBuffer* raw_response) {
  ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::shared_ptr<const auth::Grant>> grant = AuthenticateCall(access_, *context);
  if (!grant.ok()) {
    BRIDGE_LOG(Warning, "Publish from %s refused: %s", context->peer(), grant.status().ToString());
    reactor->Finish(ToGrpcStatus(grant.status()));
    return reactor;
  }
  // Parsed here rather than by gRPC, which answers a request it cannot decode (a channel
  // that is not UTF-8) with a bare UNIMPLEMENTED.
  auto request = std::make_unique<v1::PublishRequest>();
  ::grpc::ByteBuffer copy(*raw_request);
  if (!::grpc::SerializationTraits<v1::PublishRequest>::Deserialize(&copy, request.get()).ok()) {
    reactor->Finish(::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT,
                                   "request is not a PublishRequest (a string field that is not "
                                   "UTF-8?)"));
    return reactor;
  }
  if (!request->GetReflection()->GetUnknownFields(*request).empty()) {
    reactor->Finish(::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT,
                                   "request has unknown fields: is the client built from a "
                                   "newer bridge.proto?"));
    return reactor;
  }
  std::string peer = context->peer();
  // Before the grant: a refusal quotes the name, which must be a valid one.
  if (absl::Status st = hub_->ValidateName("channel", request->channel()); !st.ok()) {
    reactor->Finish(ToGrpcStatus(st));
    return reactor;
  }
  if (!(*grant)->MayPublish(request->channel())) {
    BRIDGE_LOG(Warning, "Publish from %s (%s) to %s refused: not in its grant", peer,
               (*grant)->name, request->channel());
    reactor->Finish(
        ::grpc::Status(::grpc::StatusCode::PERMISSION_DENIED,
                       absl::StrCat("this token may not publish to channel ", request->channel())));
    return reactor;
  }
  // The request is this call's own: its bytes move on rather than being copied.
  hub_->Publish(std::move(*request->mutable_channel()), std::move(*request->mutable_payload()),
                std::move(*request->mutable_idempotency_key()),
                [reactor, raw_response, peer](absl::StatusOr<int64_t> receivers) {
                  if (!receivers.ok()) {
                    if (receivers.status().code() != absl::StatusCode::kUnavailable) {
                      BRIDGE_LOG(Warning, "Publish from %s failed: %s", peer,
                                 receivers.status().ToString());
                    }
                    return reactor->Finish(ToGrpcStatus(receivers.status()));
                  }
                  v1::PublishResponse response;
                  if (*receivers == hub::Upstream::kAlreadyPublished) {
                    response.set_duplicate(true);
                  } else {
                    response.set_receivers(*receivers);
                  }
                  bool own_buffer = false;
                  ::grpc::Status st = ::grpc::SerializationTraits<v1::PublishResponse>::Serialize(
                      response, raw_response, &own_buffer);
                  reactor->Finish(st);
                });
  return reactor;
}

}  // namespace bridge::grpc_frontend
