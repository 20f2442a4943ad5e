#ifndef BRIDGE_WS_LISTENER_H_
#define BRIDGE_WS_LISTENER_H_

#include <memory>

#include "absl/status/status.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core.hpp"
#include "bridge/ws/server_state.h"

namespace bridge::ws {

// Accepts connections and hands each, on a strand of its own, to an HttpSession.
// Owned by WsServer and by its pending accept.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(boost::asio::io_context& ioc, std::shared_ptr<ServerState> state);

  // Binds and listens; port 0 picks a free port.
  absl::Status Open(const boost::asio::ip::tcp::endpoint& endpoint);
  int port() const { return port_; }
  void Run();
  // From any thread: stops accepting.
  void Stop();

 private:
  void DoAccept();
  void OnAccept(boost::beast::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ioc_;
  const std::shared_ptr<ServerState> state_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  int port_ = 0;
};

}  // namespace bridge::ws

#endif  // BRIDGE_WS_LISTENER_H_
