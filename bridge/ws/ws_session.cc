#include "bridge/ws/ws_session.h"

#include <algorithm>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "bridge/common/burst.h"
#include "bridge/common/log.h"
#include "bridge/ws/server_frame.h"

namespace bridge::ws {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

// Events taken from the hub per write round: enough to keep the socket busy, few enough
// that a slow browser leaves the rest in the hub's bounded queue.
constexpr size_t kBatch = 64;
// Batches written in one turn before the session lets the other ready sessions of its
// loop go first.
constexpr int kRounds = 4;
// Longest name accepted by the parser; the hub's own, usually smaller, limit decides.
constexpr size_t kMaxParsedName = 4096;
// Publishes of one session waiting for Redis before its frames are no longer read.
constexpr size_t kMaxPublishesInFlight = 256;
// Bytes of the peer's read and dropped after Bridge's close frame (a frame over
// --ws_max_frame, say) before the socket is closed anyway.
constexpr size_t kMaxDrainBytes = 16 << 20;

// Durations from flags may be infinite; keep time arithmetic from overflowing.
std::chrono::steady_clock::duration ToClock(absl::Duration d) {
  const absl::Duration kLongest = absl::Hours(24 * 365);
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(std::clamp(d, absl::ZeroDuration(), kLongest)));
}

// An error that answers a publish: marked so that clients pair it with its publish.
std::string PublishErrorFrame(ErrorCode code, absl::string_view message) {
  return ErrorFrame(code, std::string_view(message.data(), message.size()), "publish");
}

bool Quiet(const beast::error_code& ec) {
  return ec == websocket::error::closed || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == beast::error::timeout;
}

}  // namespace

// The hub's handle on the session. Holds it weakly: the hub keeps its sink until
// Disconnect, and Disconnect happens when the session ends, which a strong reference
// here would prevent. Never locks it on the hub's thread either (the loop does, while
// it runs): dropping the last reference there, after the loop's io_context is gone,
// would destroy the session's sockets after it. The loop is shared: the hub may call a
// sink it copied after the server let go.
class WsSession::ReadySink : public hub::Sink {
 public:
  ReadySink(std::weak_ptr<WsSession> session, std::shared_ptr<Loop> loop)
      : session_(std::move(session)), loop_(std::move(loop)) {}
  void OnReady() override { loop_->MarkReady(session_); }

 private:
  const std::weak_ptr<WsSession> session_;
  const std::shared_ptr<Loop> loop_;
};

WsSession::WsSession(beast::tcp_stream&& stream, std::string read_ahead,
                     std::shared_ptr<ServerState> state, Loop* loop,
                     std::shared_ptr<const auth::Grant> grant)
    : ws_(std::move(stream)),
      state_(std::move(state)),
      grant_(std::move(grant)),
      loop_(loop),
      timer_(ws_.get_executor()) {
  beast::error_code ec;
  auto peer = beast::get_lowest_layer(ws_).socket().remote_endpoint(ec);
  peer_ = ec ? "?" : absl::StrCat(peer.address().to_string(), ":", peer.port());
  ws_.next_layer().set_read_ahead(std::move(read_ahead));
  state_->SessionCreated();
}

WsSession::~WsSession() {
  ReleaseHub();
  state_->SessionDestroyed();
}

void WsSession::Run(Request request, std::vector<std::string> channels,
                    std::vector<std::string> patterns) {
  const WsOptions& options = state_->options();
  ws_.set_option(websocket::stream_base::timeout{ToClock(options.handshake_timeout),
                                                 websocket::stream_base::none(), false});
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(beast::http::field::server, "bridge"); }));
  ws_.read_message_max(options.max_frame_bytes);
  // One frame per message: the shared encoding goes out as it is.
  ws_.auto_fragment(false);
  // Pongs are the liveness signal of a peer with nothing to say. Pings are client frames
  // like any other for the rate limit: Beast answers each with a pong. The callback runs
  // inside our own read operation, on the strand, where no operation may be started: the
  // close waits for the strand's next turn.
  ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong) last_seen_ = Clock::now();
    if (kind == websocket::frame_type::ping && phase_ == Phase::kOpen && !TakeToken()) {
      asio::post(ws_.get_executor(), [self = shared_from_this()] { self->RateLimited(); });
    }
  });
  // A close Bridge starts reads what the peer still sends until it closes, so that the
  // close frame is not lost to a reset: as long as a close handshake may take.
  ws_.next_layer().set_teardown_limits(kMaxDrainBytes, ToClock(options.handshake_timeout));
  ws_.next_layer().set_owner(std::weak_ptr<CoalescingStream::Owner>(weak_from_this()));
  ws_.async_accept(request, [self = shared_from_this(), channels = std::move(channels),
                             patterns = std::move(patterns)](beast::error_code ec) mutable {
    self->OnAccept(std::move(channels), std::move(patterns), ec);
  });
}

void WsSession::OnAccept(std::vector<std::string> channels, std::vector<std::string> patterns,
                         beast::error_code ec) {
  if (ec) return Fail(ec, "handshake");
  const WsOptions& options = state_->options();
  phase_ = Phase::kOpen;
  const auto now = Clock::now();
  last_seen_ = now;
  last_refill_ = now;
  tokens_ = std::max(options.client_frame_burst, 1.0);
  next_ping_ = now + ToClock(options.ping_interval);
  DoRead();
  ArmTimer(std::min(next_ping_, last_seen_ + ToClock(options.idle_timeout)));

  hub::SubscriberOptions sub_options = options.subscriber;
  sub_options.max_topics = options.max_subscriptions;
  auto subscriber = state_->hub()->Connect(
      std::make_shared<ReadySink>(weak_from_this(), loop_->shared_from_this()), sub_options);
  if (!subscriber.ok()) return BeginClose(websocket::close_code::going_away, "shutting down");
  subscriber_ = *std::move(subscriber);
  if (!state_->Register(this, weak_from_this())) {
    return BeginClose(websocket::close_code::going_away, "shutting down");
  }
  BRIDGE_LOG(Debug, "ws %s: open", peer_);
  if (!channels.empty() || !patterns.empty()) {
    Subscribe(SubscribeCommand{std::move(channels), std::move(patterns), {}});
  }
}

void WsSession::OnHubReady() {
  if (!Writable()) return;
  // A closed subscriber is acted on at once, even with writes pending: a slow consumer's
  // socket is exactly the one whose writes do not finish.
  if (!subscriber_->status().ok()) return OnHubClosed();
  hub_ready_ = true;
  Pump();
}

void WsSession::GoAway() {
  asio::post(ws_.get_executor(), [self = shared_from_this()] {
    self->BeginClose(websocket::close_code::going_away, "server shutting down");
  });
}

void WsSession::Abort() {
  asio::post(ws_.get_executor(), [self = shared_from_this()] { self->Cut(); });
}

void WsSession::DoRead() {
  // Never a read of the socket we closed ourselves.
  if (cut_ || phase_ == Phase::kClosed) return;
  ws_.async_read(read_buffer_, beast::bind_front_handler(&WsSession::OnRead, shared_from_this()));
}

void WsSession::OnRead(beast::error_code ec, std::size_t) {
  if (ec) return Fail(ec, "read");
  last_seen_ = Clock::now();
  // While closing, read on only to receive the peer's close frame.
  if (phase_ == Phase::kOpen) {
    if (!TakeToken()) {
      RateLimited();
    } else if (!ws_.got_text()) {
      SendError(ErrorCode::kBinaryUnsupported, "send JSON text frames");
    } else {
      const std::string_view text(static_cast<const char*>(read_buffer_.data().data()),
                                  read_buffer_.size());
      Handle(ParseClientFrame(text, {.max_name_length = kMaxParsedName,
                                     .max_names = state_->options().max_subscriptions}));
    }
  }
  read_buffer_.consume(read_buffer_.size());
  // Client frames are rare: an idle session keeps no read block between them.
  read_buffer_.shrink_to_fit();
  if (ReadBlocked()) {
    // The client's next frames wait in TCP; pings and pongs too, so the idle timeout
    // ends a session whose socket stays full that long.
    read_paused_ = true;
    return;
  }
  DoRead();
}

void WsSession::RateLimited() {
  if (phase_ != Phase::kOpen) return;
  SendError(ErrorCode::kRateLimited, "too many frames; closing");
  BeginClose(websocket::close_code::policy_error, "rate limited");
}

bool WsSession::ReadBlocked() const {
  return ws_.next_layer().waiting() || publish_answers_.size() >= kMaxPublishesInFlight;
}

void WsSession::MaybeResumeRead() {
  if (!read_paused_ || phase_ == Phase::kClosed || ReadBlocked()) return;
  read_paused_ = false;
  DoRead();
}

bool WsSession::Writable() const { return phase_ == Phase::kOpen && ws_.is_open(); }

bool WsSession::TakeToken() {
  const WsOptions& options = state_->options();
  if (options.max_client_frames_per_sec <= 0) return true;
  const auto now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - last_refill_).count();
  last_refill_ = now;
  tokens_ = std::min(std::max(options.client_frame_burst, 1.0),
                     tokens_ + elapsed * options.max_client_frames_per_sec);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void WsSession::Handle(ClientFrame frame) {
  std::visit(
      [this](auto&& f) {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, ClientError>) {
          if (f.publish) return AnswerPublishError(BeginPublish(), f.code, f.message);
          if (f.history) {
            return AnswerPublish(BeginPublish(), ErrorFrame(f.code, f.message, "history"));
          }
          SendError(f.code, f.message);
        } else if constexpr (std::is_same_v<T, SubscribeCommand>) {
          Subscribe(std::move(f));
        } else if constexpr (std::is_same_v<T, HistoryCommand>) {
          History(std::move(f));
        } else if constexpr (std::is_same_v<T, UnsubscribeCommand>) {
          Unsubscribe(f);
        } else if constexpr (std::is_same_v<T, PublishCommand>) {
          Publish(std::move(f));
        } else {
          static_assert(std::is_same_v<T, PingCommand>);
          Send(PongFrame());
        }
      },
      std::move(frame));
}

void WsSession::Subscribe(SubscribeCommand command) {
  std::vector<std::string>& channels = command.channels;
  std::vector<std::string>& patterns = command.patterns;
  hub::ResumePositions resume;
  for (auto& [channel, position] : command.resume) resume[channel] = std::move(position);
  // A bad name refuses the whole op (below); a topic outside the token's grant is, like
  // one Redis refuses, an error of its own, and the rest go ahead.
  auto valid = [&](const char* kind, const std::vector<std::string>& names) {
    return std::all_of(names.begin(), names.end(), [&](const std::string& name) {
      return state_->hub()->ValidateName(kind, name).ok();
    });
  };
  const bool resume_valid = std::all_of(resume.begin(), resume.end(), [&](const auto& r) {
    return state_->hub()->ValidateName("channel", r.first).ok();
  });
  if (valid("channel", channels) && valid("pattern", patterns) && resume_valid) {
    absl::erase_if(resume, [&](const auto& r) {
      const absl::Status st = grant_->CheckSubscribeChannel(r.first);
      // Listed in "channels" too, it is answered there, below.
      if (!st.ok() && std::find(channels.begin(), channels.end(), r.first) == channels.end()) {
        Send(ForbiddenFrame(hub::Topic::Channel(r.first), std::string(st.message())));
      }
      return !st.ok();
    });
    std::erase_if(channels, [&](const std::string& channel) {
      const absl::Status st = grant_->CheckSubscribeChannel(channel);
      if (!st.ok()) Send(ForbiddenFrame(hub::Topic::Channel(channel), std::string(st.message())));
      return !st.ok();
    });
    std::erase_if(patterns, [&](const std::string& pattern) {
      const absl::Status st = grant_->CheckSubscribePattern(pattern);
      if (!st.ok()) Send(ForbiddenFrame(hub::Topic::Pattern(pattern), std::string(st.message())));
      return !st.ok();
    });
    if (channels.empty() && patterns.empty() && resume.empty()) return;
  }
  const absl::Status st = state_->hub()->Subscribe(subscriber_, channels, patterns, resume);
  if (st.ok()) return;  // "subscribed" frames follow through the hub
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument:
      return SendError(ErrorCode::kBadChannel, st.message());
    case absl::StatusCode::kResourceExhausted:
      return SendError(hub::Hub::IsTooManyTopics(st) ? ErrorCode::kTooManyTopics
                                                     : ErrorCode::kTooManySubscriptions,
                       st.message());
    default:
      return SendError(ErrorCode::kUnavailable, st.message());
  }
}

void WsSession::Unsubscribe(const UnsubscribeCommand& command) {
  // Checked as subscribe checks them: a name no subscribe could have taken is the
  // client's mistake, and acknowledging it would echo it back as if it were a topic.
  for (const auto& [kind, names] :
       {std::pair{"channel", &command.channels}, std::pair{"pattern", &command.patterns}}) {
    for (const std::string& name : *names) {
      if (absl::Status st = state_->hub()->ValidateName(kind, name); !st.ok()) {
        return SendError(ErrorCode::kBadChannel, st.message());
      }
    }
  }
  state_->hub()->Unsubscribe(subscriber_, command.channels, command.patterns);
  // Acknowledged so that a client knows no more messages of these will come.
  for (const auto& c : command.channels) Send(UnsubscribedFrame(hub::Topic::Channel(c)));
  for (const auto& p : command.patterns) Send(UnsubscribedFrame(hub::Topic::Pattern(p)));
}

void WsSession::Publish(PublishCommand command) {
  const uint64_t id = BeginPublish();
  if (!state_->options().allow_publish) {
    return AnswerPublishError(id, ErrorCode::kPublishForbidden,
                              "publishing is not allowed on this server");
  }
  if (absl::Status st = state_->hub()->ValidateName("channel", command.channel); !st.ok()) {
    return AnswerPublishError(id, ErrorCode::kBadChannel, st.message());
  }
  if (!grant_->MayPublish(command.channel)) {
    return AnswerPublishError(id, ErrorCode::kPublishForbidden,
                              "this token may not publish to this channel");
  }
  std::string channel = command.channel;
  // Runs on the upstream's thread (or here, for a refusal), possibly after the server
  // shut down: it holds the session weakly and reaches it only through its loop, which
  // drops the answer once stopped.
  state_->hub()->Publish(
      std::move(command.channel), std::move(command.payload), std::move(command.idempotency_key),
      [loop = loop_->shared_from_this(), session = weak_from_this(), id,
       channel = std::move(channel)](absl::StatusOr<hub::PublishResult> result) mutable {
        std::string json =
            result.ok() ? PublishedFrame(channel, *result)
                        : PublishErrorFrame(ErrorCode::kPublishFailed, result.status().message());
        loop->Post([session = std::move(session), id, json = std::move(json)]() mutable {
          if (auto self = session.lock()) self->AnswerPublish(id, std::move(json));
        });
      });
}

void WsSession::History(HistoryCommand command) {
  // Answered in order with publishes, through the same bounded queue of answers.
  const uint64_t id = BeginPublish();
  auto refuse = [&](ErrorCode code, absl::string_view message) {
    AnswerPublish(id,
                  ErrorFrame(code, std::string_view(message.data(), message.size()), "history"));
  };
  if (absl::Status st = state_->hub()->ValidateName("channel", command.channel); !st.ok()) {
    return refuse(ErrorCode::kBadChannel, st.message());
  }
  if (absl::Status st = grant_->CheckSubscribeChannel(command.channel); !st.ok()) {
    return refuse(ErrorCode::kForbidden, st.message());
  }
  std::string channel = command.channel;
  state_->hub()->History(
      std::move(command.channel), std::move(command.since), command.limit,
      [loop = loop_->shared_from_this(), session = weak_from_this(), id,
       channel = std::move(channel),
       request_id = std::move(command.id)](absl::StatusOr<hub::HistoryResult> result) mutable {
        std::string json;
        if (result.ok()) {
          json = HistoryFrame(channel, request_id, *result);
        } else {
          const absl::string_view message = result.status().message();
          json = ErrorFrame(result.status().code() == absl::StatusCode::kFailedPrecondition
                                ? ErrorCode::kNotDurable
                                : ErrorCode::kHistoryFailed,
                            std::string_view(message.data(), message.size()), "history");
        }
        loop->Post([session = std::move(session), id, json = std::move(json)]() mutable {
          if (auto self = session.lock()) self->AnswerPublish(id, std::move(json));
        });
      });
}

uint64_t WsSession::BeginPublish() {
  if (publish_answers_.full()) {
    publish_answers_.set_capacity(std::max<size_t>(4, 2 * publish_answers_.capacity()));
  }
  publish_answers_.push_back(std::nullopt);
  return first_publish_ + publish_answers_.size() - 1;
}

void WsSession::AnswerPublish(uint64_t id, std::string json) {
  if (id < first_publish_ || id - first_publish_ >= publish_answers_.size()) {
    BRIDGE_LOG(Error, "ws %s: answer to unknown publish %d", peer_, id);
    return;
  }
  publish_answers_[id - first_publish_] = std::move(json);
  while (!publish_answers_.empty() && publish_answers_.front().has_value()) {
    Send(*publish_answers_.front());
    publish_answers_.pop_front();
    ++first_publish_;
    if (publish_answers_.empty())
      boost::circular_buffer<std::optional<std::string>>().swap(publish_answers_);
  }
  MaybeResumeRead();
}

void WsSession::AnswerPublishError(uint64_t id, ErrorCode code, absl::string_view message) {
  AnswerPublish(id, PublishErrorFrame(code, message));
}

void WsSession::Send(std::string_view json) {
  if (!Writable()) return;
  ws_.next_layer().AppendTextFrame(json);
  if (!writing_) Flush();
}

void WsSession::SendError(ErrorCode code, absl::string_view message) {
  Send(ErrorFrame(code, std::string_view(message.data(), message.size())));
}

bool WsSession::Flush() {
  CoalescingStream& out = ws_.next_layer();
  if (!out.Flush()) {
    writing_ = true;
    return false;
  }
  if (out.error()) {
    Fail(out.error(), "write");
    return false;
  }
  return true;
}

void WsSession::OnStreamFlushed(beast::error_code ec) {
  writing_ = false;
  if (ec) return Fail(ec, "write");
  MaybeResumeRead();
  if (phase_ == Phase::kOpen) return Pump();
  MaybeDoClose();
}

void WsSession::Pump() {
  for (int round = 0; round < kRounds; ++round) {
    if (!Writable() || !hub_ready_ || writing_) return;
    const auto result = subscriber_->PopMany(&batch_, kBatch);
    if (result == hub::Subscriber::PopResult::kClosed) return OnHubClosed();
    if (result == hub::Subscriber::PopResult::kEmpty) hub_ready_ = false;
    if (batch_.empty()) return;
    for (hub::Event& event : batch_) Append(event);
    // A burst's batch is not kept by a session that has caught up.
    if (hub_ready_) {
      batch_.clear();
    } else {
      ClearAfterBurst(batch_, kBatch / 4);
    }
    if (!Flush()) return;
  }
  // More is queued: the other sessions waiting for this thread go first.
  if (Writable() && hub_ready_ && !writing_) loop_->MarkReady(weak_from_this());
}

void WsSession::Append(hub::Event& event) {
  CoalescingStream& out = ws_.next_layer();
  switch (event.type) {
    case hub::Event::Type::kMessage: {
      // Framed once per message for every socket; the message keeps the bytes alive.
      const std::string& frame =
          event.message->Encoded<std::string>(kWsEncodingSlot, MessageWireFrame);
      return out.AppendFrame(std::move(event.message), frame);
    }
    case hub::Event::Type::kSubscribed:
      return out.AppendTextFrame(SubscribedFrame(event.topic));
    case hub::Event::Type::kGap:
      return out.AppendTextFrame(GapFrame(event.topic, event.reason, event.dropped));
    case hub::Event::Type::kRefused:
      return out.AppendTextFrame(RefusedFrame(event.topic));
  }
}

void WsSession::OnHubClosed() {
  hub_ready_ = false;
  if (!Writable()) return;
  const absl::Status st = subscriber_->status();
  if (st.code() == absl::StatusCode::kResourceExhausted) {
    BRIDGE_LOG(Info, "ws %s: %s", peer_, st.message());
    // What is not yet on the wire would only wait behind a socket that does not drain.
    ws_.next_layer().DiscardPending();
    SendError(ErrorCode::kSlowConsumer, st.message());
    BeginClose(websocket::close_code::policy_error, "slow consumer");
    // Dropped by the hub now, not once the close handshake of a socket that may not
    // drain for long has ended: its queue and its place in the subscriber count (the
    // server's sessions) go. The close deadline still ends it; a shutdown before that
    // ends it with its loop.
    return ReleaseHub();
  }
  BeginClose(websocket::close_code::going_away, "server shutting down");
}

void WsSession::BeginClose(websocket::close_code code, std::string_view reason) {
  // Beast may have begun the close itself; its read then ends the session.
  if (!Writable()) return;
  phase_ = Phase::kClosing;
  // The peer may answer the close, not flood it: the handshake's reads are bounded too.
  ws_.next_layer().LimitReads(kMaxDrainBytes);
  close_reason_ = websocket::close_reason(code, beast::string_view(reason.data(), reason.size()));
  // A peer that reads nothing never lets the close frame out; cut it at the deadline.
  close_deadline_ = Clock::now() + ToClock(state_->options().handshake_timeout);
  ArmTimer(close_deadline_);
  MaybeDoClose();
}

void WsSession::MaybeDoClose() {
  // Beast allows one control frame operation at a time, after the queued frames.
  if (phase_ != Phase::kClosing || close_started_ || writing_ || ping_in_flight_) return;
  close_started_ = true;
  ws_.async_close(close_reason_,
                  beast::bind_front_handler(&WsSession::OnClose, shared_from_this()));
}

void WsSession::OnClose(beast::error_code ec) {
  if (ec) return Fail(ec, "close");
  // The pending read receives the peer's close frame and ends the session.
}

void WsSession::ArmTimer(Clock::time_point at) {
  timer_.expires_at(at);
  timer_.async_wait(beast::bind_front_handler(&WsSession::OnTimer, shared_from_this()));
}

void WsSession::OnTimer(beast::error_code ec) {
  if (ec == asio::error::operation_aborted) return;  // re-armed or released
  const auto now = Clock::now();
  const WsOptions& options = state_->options();
  if (phase_ == Phase::kClosing) {
    if (now >= close_deadline_) return Cut();
    return ArmTimer(close_deadline_);
  }
  if (phase_ != Phase::kOpen) return;
  const auto idle_deadline = last_seen_ + ToClock(options.idle_timeout);
  if (now >= idle_deadline) {
    BRIDGE_LOG(Info, "ws %s: nothing received for %s; closing", peer_,
               absl::FormatDuration(options.idle_timeout));
    return Cut();
  }
  if (now >= next_ping_) {
    // Not while Beast closes: the ping would fail, and cut its close short.
    if (!ping_in_flight_ && ws_.is_open()) {
      ping_in_flight_ = true;
      ws_.async_ping({}, beast::bind_front_handler(&WsSession::OnPing, shared_from_this()));
    }
    next_ping_ = now + ToClock(options.ping_interval);
  }
  ArmTimer(std::min(next_ping_, idle_deadline));
}

void WsSession::OnPing(beast::error_code ec) {
  ping_in_flight_ = false;
  if (ec) return Fail(ec, "ping");
  MaybeDoClose();
}

void WsSession::Fail(beast::error_code ec, const char* what) {
  if (ec != asio::error::operation_aborted) {
    // After our own Cut, Beast's operations under way end on the closed socket: no news.
    if (Quiet(ec) || cut_) {
      BRIDGE_LOG(Debug, "ws %s: %s: %s", peer_, what, ec.message());
    } else {
      BRIDGE_LOG(Info, "ws %s: %s: %s", peer_, what, ec.message());
    }
  }
  Cut();
}

void WsSession::Cut() {
  cut_ = true;
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
  // Nothing more happens on a closed socket: with no read pending (paused), nothing
  // else would end the session.
  Release();
}

void WsSession::Release() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  hub_ready_ = false;
  timer_.cancel();
  ws_.next_layer().DiscardPending();
  ReleaseHub();
}

void WsSession::LeaveHub() {
  if (hub_left_) return;
  hub_left_ = true;
  if (subscriber_ != nullptr) state_->hub()->Disconnect(subscriber_);
}

void WsSession::ReleaseHub() {
  LeaveHub();
  if (unregistered_) return;
  unregistered_ = true;
  state_->Unregister(this);
}

}  // namespace bridge::ws
