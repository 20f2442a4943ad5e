#include "bridge/grpc/subscribe_reactor.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "bridge/common/burst.h"
#include "bridge/common/log.h"
#include "bridge/grpc/call_access.h"
#include "bridge/grpc/event_codec.h"
#include "bridge/grpc/status_util.h"
#include "bridge/redis/subscribe_refused.h"
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
  if (request->channels().empty() && request->patterns().empty() && request->resume().empty()) {
    return absl::InvalidArgumentError("subscribe to at least one channel or pattern");
  }
  return absl::OkStatus();
}

}  // namespace

::grpc::ServerWriteReactor<::grpc::ByteBuffer>* SubscribeReactor::Start(
    hub::Hub* hub, WritePump* pump, std::atomic<size_t>* open_streams,
    const hub::SubscriberOptions& options, const auth::Access& access, Form form,
    ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* raw_request) {
  v1::SubscribeRequest request;
  absl::StatusOr<std::shared_ptr<const auth::Grant>> grant = AuthenticateCall(access, *context);
  absl::Status st = grant.status();
  if (st.ok()) st = ParseRequest(raw_request, &request);
  // gRPC keeps the request until the call ends (its grpc_byte_buffer alone is about 300
  // bytes, a sixtieth of an idle stream); parsed, it is not needed. The object is the
  // handler's own, created non-const, and read by nothing after this.
  const_cast<::grpc::ByteBuffer*>(raw_request)->Clear();
  // Channels named only in `resume` are subscribed too.
  std::vector<std::string> channels(request.channels().begin(), request.channels().end());
  hub::ResumePositions resume;
  for (const auto& [channel, position] : request.resume()) {
    resume[channel] = hub::StreamPosition{position.offset(), position.epoch()};
    if (std::find(channels.begin(), channels.end(), channel) == channels.end()) {
      channels.push_back(channel);
    }
  }
  const size_t asked = channels.size() + static_cast<size_t>(request.patterns_size());
  if (st.ok() && asked > options.max_topics) {
    st = absl::ResourceExhaustedError(absl::StrFormat(
        "%d channels and patterns asked, the limit is %d", asked, options.max_topics));
  }
  // Names are checked before the grant, so that a refusal's message (and log line) only
  // ever quotes a valid name.
  for (size_t i = 0; st.ok() && i < channels.size(); ++i) {
    st = hub->ValidateName("channel", channels[i]);
  }
  for (int i = 0; st.ok() && i < request.patterns_size(); ++i) {
    st = hub->ValidateName("pattern", request.patterns(i));
  }
  // A stream subscribes all its topics or none: the first one the grant lacks refuses it.
  if (st.ok()) st = (*grant)->CheckSubscribe(channels, request.patterns());
  if (!st.ok()) {
    BRIDGE_LOG(Warning, "Subscribe from %s refused: %s", context->peer(), st.ToString());
    return new RefusedReactor(ToGrpcStatus(st));
  }
  auto reactor = std::make_shared<SubscribeReactor>(hub, pump, open_streams, form, context);
  absl::StatusOr<std::shared_ptr<hub::Subscriber>> connected = hub->Connect(reactor, options);
  if (!connected.ok()) return new RefusedReactor(ToGrpcStatus(connected.status()));
  std::shared_ptr<hub::Subscriber> subscriber = *std::move(connected);
  {
    // A wake-up before this finds no subscriber and is lost. Only Hub::Shutdown can send
    // one (the subscriber holds no topic yet), and then Hub::Subscribe below refuses.
    absl::MutexLock lock(&reactor->mu_);
    reactor->subscriber_ = subscriber;
  }
  reactor->self_ = reactor;
  // Before Subscribe: the reactor may be written to as soon as the hub knows it.
  st = hub->Subscribe(subscriber, channels, {request.patterns().begin(), request.patterns().end()},
                      resume);
  if (!st.ok()) {
    // Without the payload that marks the hub's topic limit (Hub::IsTooManyTopics).
    BRIDGE_LOG(Warning, "Subscribe from %s refused: %s", context->peer(),
               st.ToString(absl::StatusToStringMode::kWithNoExtraData));
    absl::MutexLock lock(&reactor->mu_);
    reactor->FinishLocked(ToGrpcStatus(st));
  }
  return reactor.get();
}

SubscribeReactor::SubscribeReactor(hub::Hub* hub, WritePump* pump,
                                   std::atomic<size_t>* open_streams, Form form,
                                   ::grpc::CallbackServerContext* context)
    : hub_(hub), pump_(pump), open_streams_(open_streams), form_(form), context_(context) {
  open_streams_->fetch_add(1, std::memory_order_relaxed);
}

SubscribeReactor::~SubscribeReactor() { open_streams_->fetch_sub(1, std::memory_order_relaxed); }

void SubscribeReactor::OnReady() { pump_->Add(shared_from_this()); }

void SubscribeReactor::WriteNext() {
  const ::grpc::ByteBuffer* next = nullptr;
  ::grpc::WriteOptions options;
  bool cancel = false;
  ::grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    cancel = ShouldCancelLocked();
    if (cancel) status = *finish_;
    if (!cancel && !NextWriteLocked(&next, &options)) return;
  }
  if (cancel) return CancelStalled(status);
  StartWrite(next, options);
}

bool SubscribeReactor::ShouldCancelLocked() {
  // The hub wakes a stream for a push only after a Pop found its queue empty, when no
  // write is in flight; woken while writing, the subscriber has been closed.
  if (!writing_ || finish_.has_value() || subscriber_ == nullptr) return false;
  const absl::Status closed = subscriber_->status();
  // At shutdown (UNAVAILABLE) a reading client's write completes and the status follows
  // it; the server's shutdown deadline cancels the streams whose clients do not read.
  if (closed.code() != absl::StatusCode::kResourceExhausted) return false;
  finish_ = ToGrpcStatus(closed);
  cancelling_ = true;
  return true;
}

void SubscribeReactor::CancelStalled(const ::grpc::Status& status) {
  BRIDGE_LOG(Info, "Subscribe from %s: the client stopped reading; cancelling the stream",
             context_->peer());
  // What TryCancel does, with the slow consumer's status instead of CANCELLED: the
  // transport sends it in trailers (not held back by flow control) and resets the stream,
  // so the client still reads RESOURCE_EXHAUSTED, as documented. Outside the lock: gRPC
  // may run OnCancel and OnWriteDone before it returns. The stalled write completes with
  // ok=false, and OnDone releases the subscriber.
  grpc_call_cancel_with_status(context_->c_call(),
                               static_cast<grpc_status_code>(status.error_code()),
                               status.error_message().c_str(), nullptr);
  absl::MutexLock lock(&mu_);
  cancelling_ = false;
  FinishLocked(*finish_);
}

bool SubscribeReactor::NextWriteLocked(const ::grpc::ByteBuffer** next,
                                       ::grpc::WriteOptions* options) {
  if (writing_ || finish_.has_value() || subscriber_ == nullptr) return false;
  return form_ == Form::kEvent ? NextEventLocked(next, options) : NextBatchLocked(next);
}

bool SubscribeReactor::NextEventLocked(const ::grpc::ByteBuffer** next,
                                       ::grpc::WriteOptions* options) {
  if (batch_next_ == batch_.size()) {
    batch_.clear();
    batch_next_ = 0;
    switch (subscriber_->PopMany(&batch_, kBatch)) {
      case hub::Subscriber::PopResult::kEmpty:
        // A burst's batch is not kept by a stream that goes quiet.
        ClearAfterBurst(batch_, kBatch / 4);
        return false;
      case hub::Subscriber::PopResult::kClosed:
        FinishLocked(ToGrpcStatus(subscriber_->status()));
        return false;
      case hub::Subscriber::PopResult::kEvent:
        break;
    }
  }
  if (batch_[batch_next_].type == hub::Event::Type::kRefused) {
    // A stream subscribes all its topics or none: one refused ends it.
    const hub::Topic& topic = batch_[batch_next_].topic;
    FinishLocked(ToGrpcStatus(redis::SubscribeRefusedError(topic)));
    return false;
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

bool SubscribeReactor::NextBatchLocked(const ::grpc::ByteBuffer** next) {
  // Events left by the last batch's byte cap go first, topped up with what is queued now.
  if (batch_next_ > 0) {
    batch_.erase(batch_.begin(), batch_.begin() + static_cast<ptrdiff_t>(batch_next_));
    batch_next_ = 0;
  }
  if (batch_.size() < kMaxBatchEvents) {
    const hub::Subscriber::PopResult popped =
        subscriber_->PopMany(&batch_, kMaxBatchEvents - batch_.size());
    if (batch_.empty()) {
      if (popped == hub::Subscriber::PopResult::kClosed) {
        FinishLocked(ToGrpcStatus(subscriber_->status()));
      } else {
        // A burst's lists are not kept by a stream that goes quiet.
        ClearAfterBurst(batch_, kMaxBatchEvents / 4);
        ClearAfterBurst(slices_, kMaxBatchEvents / 4);
      }
      return false;
    }
  }
  size_t bytes = 0;
  for (; batch_next_ < batch_.size(); ++batch_next_) {
    const hub::Event& event = batch_[batch_next_];
    // A stream subscribes all its topics or none: one refused ends it, after the events
    // before it.
    if (event.type == hub::Event::Type::kRefused) break;
    ::grpc::Slice element = event.type == hub::Event::Type::kMessage
                                ? EncodeMessageElement(*event.message)
                                : EncodeControlElement(event);
    if (!slices_.empty() && bytes + element.size() > kMaxBatchBytes) break;
    bytes += element.size();
    slices_.push_back(std::move(element));
  }
  if (slices_.empty()) {
    FinishLocked(ToGrpcStatus(redis::SubscribeRefusedError(batch_[batch_next_].topic)));
    return false;
  }
  writing_ = true;
  const hub::Event& last = batch_[batch_next_ - 1];
  if (slices_.size() == 1 && last.type == hub::Event::Type::kMessage) {
    // One message, as when the stream keeps up: the batch every such stream writes, made
    // once with the message, which in_flight_ keeps alive until the write completes.
    slices_.clear();
    in_flight_ = last;
    *next = &EncodeMessageBatch(*in_flight_.message);
    return true;
  }
  // The buffer takes a reference to each slice: the bytes are the messages' own, kept
  // alive by the buffer until the write completes, whatever becomes of the messages.
  batch_buffer_ = ::grpc::ByteBuffer(slices_.data(), slices_.size());
  slices_.clear();
  *next = &batch_buffer_;
  return true;
}

void SubscribeReactor::OnWriteDone(bool ok) {
  const ::grpc::ByteBuffer* next = nullptr;
  ::grpc::WriteOptions options;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    in_flight_ = hub::Event();
    batch_buffer_.Clear();
    // Not kept until the next control event, which may never come: an idle stream would
    // hold its Subscribed event's buffer (about 300 bytes) for good.
    control_buffer_.Clear();
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
  if (writing_ || cancelling_ || finish_sent_) return;
  finish_sent_ = true;
  Finish(*finish_);
}

void SubscribeReactor::OnDone() {
  std::shared_ptr<hub::Subscriber> subscriber;
  {
    absl::MutexLock lock(&mu_);
    subscriber = std::move(subscriber_);
  }
  // Releases the channels at once; the hub drops its reference to this sink.
  if (subscriber != nullptr) hub_->Disconnect(subscriber);
  self_.reset();  // May delete this.
}

}  // namespace bridge::grpc_frontend
