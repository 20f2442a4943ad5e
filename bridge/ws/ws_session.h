#ifndef BRIDGE_WS_WS_SESSION_H_
#define BRIDGE_WS_WS_SESSION_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/websocket.hpp"
#include "boost/circular_buffer.hpp"
#include "bridge/auth/grant.h"
#include "bridge/hub/event.h"
#include "bridge/hub/subscriber.h"
#include "bridge/ws/client_frame.h"
#include "bridge/ws/coalescing_stream.h"
#include "bridge/ws/error_code.h"
#include "bridge/ws/loop.h"
#include "bridge/ws/server_state.h"

namespace bridge::ws {

// One browser's WebSocket: reads its JSON commands, and writes the events of its hub
// subscriber. Owns itself through the handlers bound to shared_from_this(); lives on the
// loop (I/O thread) its socket was accepted on, and every member is touched only there.
//
// Back-pressure: events stay in the hub's bounded queue until the previous batch is on
// the wire, so that the hub's slow-consumer policy, not this session, decides what a
// slow browser loses. The session itself holds at most one batch. Client frames are not
// read while the socket is full (nor while too many publishes await Redis): the replies
// they would cause have nowhere to go, so the client's own sends meet TCP back-pressure
// instead of the session buffering replies without bound.
class WsSession : public std::enable_shared_from_this<WsSession>, public CoalescingStream::Owner {
 public:
  using Stream = boost::beast::websocket::stream<CoalescingStream>;
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  // `stream` belongs to `loop`'s io_context; `grant` says what the client may subscribe to
  // and publish to.
  // `read_ahead` holds what the peer sent after the upgrade request, read with it.
  WsSession(boost::beast::tcp_stream&& stream, std::string read_ahead,
            std::shared_ptr<ServerState> state, Loop* loop,
            std::shared_ptr<const auth::Grant> grant);
  ~WsSession();
  WsSession(const WsSession&) = delete;
  WsSession& operator=(const WsSession&) = delete;

  // Completes the upgrade of `request`, then subscribes to the topics the URL named.
  void Run(Request request, std::vector<std::string> channels, std::vector<std::string> patterns);

  // On the session's loop, once the hub said it has events for it: writes them.
  void OnHubReady();
  // From any thread. Closes with 1001 (going away), as at shutdown.
  void GoAway();
  // From any thread. Cuts the TCP connection without a close handshake.
  void Abort();

 private:
  class ReadySink;
  enum class Phase { kHandshake, kOpen, kClosing, kClosed };
  using Clock = std::chrono::steady_clock;

  void OnAccept(std::vector<std::string> channels, std::vector<std::string> patterns,
                boost::beast::error_code ec);
  void DoRead();
  void OnRead(boost::beast::error_code ec, std::size_t bytes);
  void Handle(ClientFrame frame);
  void Subscribe(SubscribeCommand command);
  void History(HistoryCommand command);
  void Unsubscribe(const UnsubscribeCommand& command);
  void Publish(PublishCommand command);
  // Answers are sent in the order of the publishes (and history requests, which share
  // the order and its bound): refusals known at once wait behind earlier requests still
  // with Redis. `id` is the request's place in that order.
  uint64_t BeginPublish();
  void AnswerPublish(uint64_t id, std::string json);
  // Reading stops while the replies a frame may cause could not be written.
  bool ReadBlocked() const;
  void MaybeResumeRead();
  // True while frames may still be written: our close has not begun, nor Beast's (the
  // peer's close frame, or a frame Beast refused). Nothing may follow a close frame.
  bool Writable() const;
  // Takes the rate limiter's token for one client frame; false when the client is over.
  bool TakeToken();
  // The client sent more frames than it may: an error, then a 1008 close.
  void RateLimited();

  // Queues one JSON text frame to the socket.
  void Send(std::string_view json);
  void SendError(ErrorCode code, absl::string_view message);
  void AnswerPublishError(uint64_t id, ErrorCode code, absl::string_view message);
  // Sends what the stream holds. True when it is on the socket; false when the socket is
  // full (writing_ until OnStreamFlushed) or the session failed.
  bool Flush();
  void OnStreamFlushed(boost::beast::error_code ec) override;
  // Writes batches of hub events while the socket takes them at once.
  void Pump();
  // Moves the event's message (if any) into the stream.
  void Append(hub::Event& event);
  void OnHubClosed();

  // Starts the close handshake once the frames queued so far are written.
  void BeginClose(boost::beast::websocket::close_code code, std::string_view reason);
  void MaybeDoClose();
  void OnClose(boost::beast::error_code ec);

  void ArmTimer(Clock::time_point at);
  void OnTimer(boost::beast::error_code ec);
  void OnPing(boost::beast::error_code ec);

  // Any failure ends the session: logged unless it is our own cancellation.
  void Fail(boost::beast::error_code ec, const char* what);
  // Closes the socket (no close handshake) and ends the session.
  void Cut();
  void Release();
  // Disconnects the hub subscriber: the hub dropped it, or the session ends.
  void LeaveHub();
  // LeaveHub, and the server forgets the session.
  void ReleaseHub();

  Stream ws_;
  const std::shared_ptr<ServerState> state_;
  const std::shared_ptr<const auth::Grant> grant_;
  Loop* const loop_;
  std::string peer_;
  Phase phase_ = Phase::kHandshake;

  std::shared_ptr<hub::Subscriber> subscriber_;
  bool hub_left_ = false;
  bool unregistered_ = false;
  // Cut closed the socket: nothing reads it again, and what fails on it is not news.
  bool cut_ = false;
  // OnReady fired and the hub queue was not yet drained to kEmpty.
  bool hub_ready_ = false;
  std::vector<hub::Event> batch_;

  boost::beast::flat_buffer read_buffer_;
  // No read is pending because ReadBlocked() said so; MaybeResumeRead starts the next.
  bool read_paused_ = false;

  // The answers of the publishes not yet answered on the wire, oldest first; an entry
  // is empty until its answer is known. The front entry's id is first_publish_.
  // A ring that allocates on the first publish (a deque would allocate with every
  // session) and is released once the answers are out.
  boost::circular_buffer<std::optional<std::string>> publish_answers_;
  uint64_t first_publish_ = 0;
  // The socket is full: from a Flush that returned false until OnStreamFlushed.
  bool writing_ = false;

  boost::beast::websocket::close_reason close_reason_;
  bool close_started_ = false;

  boost::asio::steady_timer timer_;
  Clock::time_point last_seen_;
  Clock::time_point next_ping_;
  Clock::time_point close_deadline_;
  bool ping_in_flight_ = false;

  double tokens_ = 0;
  Clock::time_point last_refill_;
};

}  // namespace bridge::ws

#endif  // BRIDGE_WS_WS_SESSION_H_
