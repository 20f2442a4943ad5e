#include "bridge/grpc/subscribe_reactor.h"

#include <utility>

#include "bridge/common/log.h"
#include "bridge/grpc/event_codec.h"
#include "bridge/grpc/status_util.h"
#include "bridge/v1/bridge.grpc.pb.h"

namespace bridge::grpc_frontend {
namespace {

// Events taken from the hub at a time; all but the last are written with a buffer hint.
constexpr size_t kBatch = 32;

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
    hub::Hub* hub, WritePump* pump, const hub::SubscriberOptions& options,
    ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* raw_request) {
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
  auto reactor = std::make_shared<SubscribeReactor>(hub, pump);
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

SubscribeReactor::SubscribeReactor(hub::Hub* hub, WritePump* pump) : hub_(hub), pump_(pump) {}

void SubscribeReactor::OnReady() { pump_->Add(shared_from_this()); }

void SubscribeReactor::WriteNext() {
  const ::grpc::ByteBuffer* next = nullptr;
  ::grpc::WriteOptions options;
  {
    absl::MutexLock lock(&mu_);
    if (!NextWriteLocked(&next, &options)) return;
  }
  StartWrite(next, options);
}

bool SubscribeReactor::NextWriteLocked(const ::grpc::ByteBuffer** next,
                                       ::grpc::WriteOptions* options) {
  if (writing_ || finish_.has_value()) return false;
  if (batch_next_ == batch_.size()) {
    batch_.clear();
    batch_next_ = 0;
    switch (subscriber_->PopMany(&batch_, kBatch)) {
      case hub::Subscriber::PopResult::kEmpty:
        // A burst's batch is not kept by a stream that goes quiet.
        if (batch_.capacity() > kBatch / 4) std::vector<hub::Event>().swap(batch_);
        return false;
      case hub::Subscriber::PopResult::kClosed:
        FinishLocked(ToGrpcStatus(subscriber_->status()));
        return false;
      case hub::Subscriber::PopResult::kEvent:
        break;
    }
  }
  in_flight_ = std::move(batch_[batch_next_++]);
  writing_ = true;
  // More of the batch follows at once: gRPC may hold this message back (and completes the
  // write at once) until the last one, which goes out with all of them in one send. Never
  // the first write: it carries the response headers, and a hinted write's completion
  // waits for them to be sent, which nothing would start.
  if (headers_sent_ && batch_next_ < batch_.size()) options->set_buffer_hint();
  headers_sent_ = true;
  if (in_flight_.type == hub::Event::Type::kMessage) {
    *next = &EncodeMessage(*in_flight_.message);
  } else {
    control_buffer_ = EncodeControl(in_flight_);
    *next = &control_buffer_;
  }
  return true;
}

void SubscribeReactor::OnWriteDone(bool ok) {
  const ::grpc::ByteBuffer* next = nullptr;
  ::grpc::WriteOptions options;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    in_flight_ = hub::Event();
    if (!ok) {
      // The stream is broken (the client went away); OnCancel usually says so too.
      return FinishLocked(::grpc::Status(::grpc::StatusCode::CANCELLED, "stream broken"));
    }
    if (finish_.has_value()) return FinishLocked(*finish_);
    if (!NextWriteLocked(&next, &options)) return;
  }
  StartWrite(next, options);
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
