#include "bridge/grpc/bridge_service.h"

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
  return SubscribeReactor::Start(hub_, &pump_, &open_streams_, subscriber_, access_, context,
                                 request);
}

::grpc::ServerUnaryReactor* BridgeService::Publish(::grpc::CallbackServerContext* context,
                                                   const v1::PublishRequest* request,
                                                   v1::PublishResponse* response) {
  ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::shared_ptr<const auth::Grant>> grant = AuthenticateCall(access_, *context);
  if (!grant.ok()) {
    BRIDGE_LOG(Warning, "Publish from %s refused: %s", context->peer(), grant.status().ToString());
    reactor->Finish(ToGrpcStatus(grant.status()));
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
  hub_->Publish(request->channel(), request->payload(),
                [reactor, response, peer](absl::StatusOr<int64_t> receivers) {
                  if (!receivers.ok()) {
                    if (receivers.status().code() != absl::StatusCode::kUnavailable) {
                      BRIDGE_LOG(Warning, "Publish from %s failed: %s", peer,
                                 receivers.status().ToString());
                    }
                    return reactor->Finish(ToGrpcStatus(receivers.status()));
                  }
                  response->set_receivers(*receivers);
                  reactor->Finish(::grpc::Status::OK);
                });
  return reactor;
}

}  // namespace bridge::grpc_frontend
