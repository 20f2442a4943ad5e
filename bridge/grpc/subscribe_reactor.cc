#include "bridge/grpc/subscribe_reactor.h"

#include <utility>

#include "bridge/common/log.h"
#include "bridge/grpc/event_codec.h"
#include "bridge/grpc/status_util.h"
#include "bridge/v1/bridge.grpc.pb.h"

namespace bridge::grpc_frontend {
namespace {

// A reactor for a stream refused before it began.
class RefusedReactor : public ::grpc::ServerWriteReactor<::grpc::ByteBuffer> {
 public:
  explicit RefusedReactor(::grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

absl::Status ParseRequest(const ::grpc::ByteBuffer* raw, v1::SubscribeRequest* request) {
  ::grpc::ByteBuffer copy(*raw);
  ::grpc::Status st =
      ::grpc::SerializationTraits<v1::SubscribeRequest>::Deserialize(&copy, request);
  if (!st.ok()) return absl::InvalidArgumentError("request is not a SubscribeRequest");
  if (!request->GetReflection()->GetUnknownFields(*request).empty()) {
    return absl::InvalidArgumentError(
        "request has unknown fields: is the client built from a newer bridge.proto?");
  }
  if (request->channels().empty() && request->patterns().empty()) {
    return absl::InvalidArgumentError("subscribe to at least one channel or pattern");
  }
  return absl::OkStatus();
}

}  // namespace

::grpc::ServerWriteReactor<::grpc::ByteBuffer>* SubscribeReactor::Start(
    hub::Hub* hub, const hub::SubscriberOptions& options, ::grpc::CallbackServerContext* context,
    const ::grpc::ByteBuffer* raw_request) {
  v1::SubscribeRequest request;
  absl::Status st = ParseRequest(raw_request, &request);
  if (st.ok() &&
      static_cast<size_t>(request.channels_size() + request.patterns_size()) > options.max_topics) {
    st = absl::ResourceExhaustedError(
        absl::StrFormat("%d channels and patterns asked, the limit is %d",
                        request.channels_size() + request.patterns_size(), options.max_topics));
  }
  if (!st.ok()) {
    BRIDGE_LOG(Warning, "Subscribe from %s refused: %s", context->peer(), st.ToString());
    return new RefusedReactor(ToGrpcStatus(st));
  }
  auto reactor = std::make_shared<SubscribeReactor>(hub);
  absl::StatusOr<std::shared_ptr<hub::Subscriber>> subscriber = hub->Connect(reactor, options);
  if (!subscriber.ok()) return new RefusedReactor(ToGrpcStatus(subscriber.status()));
  reactor->subscriber_ = *std::move(subscriber);
  reactor->self_ = reactor;
  // Before Subscribe: the reactor may be written to as soon as the hub knows it.
  st = hub->Subscribe(reactor->subscriber_, {request.channels().begin(), request.channels().end()},
                      {request.patterns().begin(), request.patterns().end()});
  if (!st.ok()) {
    BRIDGE_LOG(Warning, "Subscribe from %s refused: %s", context->peer(), st.ToString());
    absl::MutexLock lock(&reactor->mu_);
    reactor->FinishLocked(ToGrpcStatus(st));
  }
  return reactor.get();
}

SubscribeReactor::SubscribeReactor(hub::Hub* hub) : hub_(hub) {}

void SubscribeReactor::OnReady() {
  absl::MutexLock lock(&mu_);
  PumpLocked();
}

void SubscribeReactor::PumpLocked() {
  if (writing_ || finish_.has_value()) return;
  switch (subscriber_->Pop(&in_flight_)) {
    case hub::Subscriber::PopResult::kEmpty:
      return;
    case hub::Subscriber::PopResult::kClosed:
      return FinishLocked(ToGrpcStatus(subscriber_->status()));
    case hub::Subscriber::PopResult::kEvent:
      break;
  }
  writing_ = true;
  if (in_flight_.type == hub::Event::Type::kMessage) {
    StartWrite(&EncodeMessage(*in_flight_.message));
  } else {
    control_buffer_ = EncodeControl(in_flight_);
    StartWrite(&control_buffer_);
  }
}

void SubscribeReactor::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  in_flight_ = hub::Event();
  if (!ok) {
    // The stream is broken (the client went away); OnCancel usually says so too.
    return FinishLocked(::grpc::Status(::grpc::StatusCode::CANCELLED, "stream broken"));
  }
  if (finish_.has_value()) return FinishLocked(*finish_);
  PumpLocked();
}

void SubscribeReactor::OnCancel() {
  absl::MutexLock lock(&mu_);
  FinishLocked(::grpc::Status::CANCELLED);
}

void SubscribeReactor::FinishLocked(::grpc::Status status) {
  if (!finish_.has_value()) finish_ = std::move(status);
  if (writing_ || finish_sent_) return;
  finish_sent_ = true;
  Finish(*finish_);
}

void SubscribeReactor::OnDone() {
  // Releases the channels at once; the hub drops its reference to this sink.
  if (subscriber_ != nullptr) hub_->Disconnect(subscriber_);
  self_.reset();  // May delete this.
}

}  // namespace bridge::grpc_frontend
