#ifndef BRIDGE_REDIS_RESP_CONNECTION_H_
#define BRIDGE_REDIS_RESP_CONNECTION_H_

#include <hiredis/hiredis.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bridge/redis/asio_hiredis.h"

namespace bridge::redis {

struct RespConnectionOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  // Empty password: no AUTH. Empty user: AUTH with the password alone.
  std::string user;
  std::string password;
  // Bounds resolve + connect + AUTH + PING.
  absl::Duration connect_timeout = absl::Seconds(5);
  bool tcp_keepalive = true;
};

// One Redis connection in RESP2 on a Boost.Asio TCP socket of its own, with hiredis'
// reader for the replies and redisFormatCommandArgv for the commands: unlike hiredis
// 0.14's async context, it carries sharded pub/sub (SSUBSCRIBE, smessage, sunsubscribe),
// which that context's reply dispatch does not know.
//
// One attempt: connect, AUTH, PING; it reports once through on_ready, and once more
// through on_closed when the attempt fails or the ready connection drops; never after
// Close(). Never reused: reconnecting makes a new one.
//
// Replies go to the commands in the order sent. What Redis sends unasked goes to on_push:
// message, pmessage and smessage frames, and a (s|p)(un)subscribe frame unless it answers
// the oldest command waiting, which is a command of that name. So a subscribe-family
// command names one channel: its one confirmation is its reply. A sunsubscribe that Redis
// pushes when a slot leaves the node (or the confirmations of a command naming several
// channels) arrives as a push.
//
// Shared by its owner and its own queued handlers; every method runs on the strand.
class RespConnection : public std::enable_shared_from_this<RespConnection> {
 public:
  using ReadyHandler = absl::AnyInvocable<void()>;
  using ClosedHandler = absl::AnyInvocable<void(absl::Status)>;
  // A frame Redis sent unasked; valid only during the call.
  using PushHandler = absl::AnyInvocable<void(const redisReply& push)>;
  // A command's reply (an error reply included), valid only during the call; null when
  // the connection ended first.
  using ReplyHandler = absl::AnyInvocable<void(const redisReply* reply)>;

  RespConnection(Strand strand, RespConnectionOptions options);
  ~RespConnection();
  RespConnection(const RespConnection&) = delete;
  RespConnection& operator=(const RespConnection&) = delete;

  void Open(ReadyHandler on_ready, ClosedHandler on_closed, PushHandler on_push);
  // Sends a command once ready; `done` runs once, on the strand, never from inside this
  // call. Before ready or after the end it gets null.
  void Command(std::vector<std::string> argv, ReplyHandler done);
  // Ends the connection without reporting it; waiting commands get null before it
  // returns. Idempotent.
  void Close();

  bool ready() const { return ready_; }
  // "host:port", for logs.
  std::string address() const;

 private:
  struct Waiting {
    // The command's name in lower case, to tell its reply from a push.
    std::string name;
    ReplyHandler done;
  };

  void OnResolve(const boost::system::error_code& ec,
                 const boost::asio::ip::tcp::resolver::results_type& results);
  void OnConnect(const boost::system::error_code& ec);
  void OnHandshakeReply(const redisReply* reply, bool last);
  void OnTimeout(const boost::system::error_code& ec);
  void Send(const std::vector<std::string>& argv, ReplyHandler done);
  void DoWrite();
  void OnWrite(const boost::system::error_code& ec);
  void DoRead();
  void OnRead(const boost::system::error_code& ec, size_t bytes);
  // Hands one parsed frame to its command or to on_push.
  void Dispatch(const redisReply& reply);
  // Ends the attempt or connection with `status`, answers the waiting commands with null
  // and reports on_closed, once.
  void Fail(absl::Status status);
  void Shut();

  Strand strand_;
  const RespConnectionOptions options_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  redisReader* const reader_;

  ReadyHandler on_ready_;
  ClosedHandler on_closed_;
  PushHandler on_push_;

  bool ready_ = false;
  bool finished_ = false;
  // Commands sent (or queued to be written), oldest first.
  std::deque<Waiting> waiting_;
  // One write in flight: `writing_` is on the socket; later commands gather in `queued_`.
  std::string writing_;
  std::string queued_;
  std::array<char, 16 * 1024> read_buffer_;
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_RESP_CONNECTION_H_
