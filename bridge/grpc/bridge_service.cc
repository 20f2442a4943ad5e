#include "bridge/grpc/bridge_service.h"

#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "bridge/common/log.h"
#include "bridge/grpc/call_access.h"
#include "bridge/grpc/status_util.h"
#include "bridge/grpc/subscribe_reactor.h"

namespace bridge::grpc_frontend {
namespace {

// Decodes a unary request: INVALID_ARGUMENT (named after `what`) when the bytes are not
// one, or carry fields this server does not know.
template <typename Request>
::grpc::Status Decode(const ::grpc::ByteBuffer* raw, Request* request, absl::string_view what) {
  ::grpc::ByteBuffer copy(*raw);
  if (!::grpc::SerializationTraits<Request>::Deserialize(&copy, request).ok()) {
    return ::grpc::Status(
        ::grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("request is not a ", what, " (a string field that is not UTF-8?)"));
  }
  if (!request->GetReflection()->GetUnknownFields(*request).empty()) {
    return ::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT,
                          "request has unknown fields: is the client built from a newer "
                          "bridge.proto?");
  }
  return ::grpc::Status::OK;
}

template <typename Response>
void FinishWith(::grpc::ServerUnaryReactor* reactor, const Response& response,
                ::grpc::ByteBuffer* raw_response) {
  bool own_buffer = false;
  reactor->Finish(
      ::grpc::SerializationTraits<Response>::Serialize(response, raw_response, &own_buffer));
}

}  // namespace

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
  if (::grpc::Status st = Decode(raw_request, request.get(), "PublishRequest"); !st.ok()) {
    reactor->Finish(st);
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
                [reactor, raw_response, peer](absl::StatusOr<hub::PublishResult> result) {
                  if (!result.ok()) {
                    if (result.status().code() != absl::StatusCode::kUnavailable) {
                      BRIDGE_LOG(Warning, "Publish from %s failed: %s", peer,
                                 result.status().ToString());
                    }
                    return reactor->Finish(ToGrpcStatus(result.status()));
                  }
                  v1::PublishResponse response;
                  response.set_duplicate(result->duplicate);
                  if (!result->duplicate) response.set_receivers(result->receivers);
                  response.set_offset(result->position.offset);
                  response.set_epoch(result->position.epoch);
                  FinishWith(reactor, response, raw_response);
                });
  return reactor;
}

::grpc::ServerUnaryReactor* BridgeService::History(::grpc::CallbackServerContext* context,
                                                   const ::grpc::ByteBuffer* raw_request,
                                                   ::grpc::ByteBuffer* raw_response) {
  ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::shared_ptr<const auth::Grant>> grant = AuthenticateCall(access_, *context);
  if (!grant.ok()) {
    BRIDGE_LOG(Warning, "History from %s refused: %s", context->peer(), grant.status().ToString());
    reactor->Finish(ToGrpcStatus(grant.status()));
    return reactor;
  }
  v1::HistoryRequest request;
  if (::grpc::Status st = Decode(raw_request, &request, "HistoryRequest"); !st.ok()) {
    reactor->Finish(st);
    return reactor;
  }
  absl::Status st = hub_->ValidateName("channel", request.channel());
  // Reading a channel's history is reading the channel: the grant must let it subscribe.
  if (st.ok()) st = (*grant)->CheckSubscribeChannel(request.channel());
  if (!st.ok()) {
    reactor->Finish(ToGrpcStatus(st));
    return reactor;
  }
  std::optional<hub::StreamPosition> since;
  if (request.has_since())
    since = hub::StreamPosition{request.since().offset(), request.since().epoch()};
  hub_->History(std::move(*request.mutable_channel()), std::move(since), request.limit(),
                [reactor, raw_response](absl::StatusOr<hub::HistoryResult> result) {
                  if (!result.ok()) return reactor->Finish(ToGrpcStatus(result.status()));
                  v1::HistoryResponse response;
                  response.set_epoch(result->epoch);
                  response.set_offset(result->top);
                  response.set_history_lost(result->history_lost);
                  response.set_lost(result->lost);
                  for (const auto& m : result->messages) {
                    v1::Message* out = response.add_messages();
                    out->set_channel(m->channel());
                    out->set_payload(m->payload());
                    out->set_offset(m->offset());
                    out->set_epoch(m->position().epoch);
                    out->set_recovered(true);
                  }
                  FinishWith(reactor, response, raw_response);
                });
  return reactor;
}

}  // namespace bridge::grpc_frontend
