#ifndef BRIDGE_WS_LISTENER_H_
#define BRIDGE_WS_LISTENER_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core.hpp"
#include "bridge/common/log_rate_limiter.h"
#include "bridge/ws/loop.h"
#include "bridge/ws/server_state.h"

namespace bridge::ws {

// Accepts connections and hands each to an HttpSession on one of the loops, in turn;
// closes at once those over the connection caps. Runs on the first loop. Owned by WsServer and by
// its pending accept.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // `loops` outlive the listener; there is at least one.
  Listener(std::vector<Loop*> loops, std::shared_ptr<ServerState> state);

  // Binds and listens; port 0 picks a free port.
  absl::Status Open(const boost::asio::ip::tcp::endpoint& endpoint);
  int port() const { return port_; }
  void Run();
  // From any thread: stops accepting.
  void Stop();

 private:
  void DoAccept();
  void OnAccept(Loop* loop, boost::beast::error_code ec, boost::asio::ip::tcp::socket socket);

  const std::vector<Loop*> loops_;
  size_t next_loop_ = 0;
  const std::shared_ptr<ServerState> state_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  // An accept that keeps failing (out of descriptors) is retried every 100 ms, and said
  // once in a while, with the count.
  LogRateLimiter accept_errors_{1, absl::Seconds(10)};
  int port_ = 0;
};

}  // namespace bridge::ws

#endif  // BRIDGE_WS_LISTENER_H_
