#ifndef BRIDGE_WS_HTTP_SESSION_H_
#define BRIDGE_WS_HTTP_SESSION_H_

#include <memory>
#include <optional>

#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "bridge/ws/loop.h"
#include "bridge/ws/server_state.h"

namespace bridge::ws {

// One plain HTTP connection: /healthz, the web root's files, and the upgrade of /ws to
// a WsSession, which then takes the connection over. Owns itself through its handlers
// and lives on the loop (I/O thread) the connection was accepted onto.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `socket` belongs to `loop`'s io_context.
  HttpSession(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<ServerState> state,
              Loop* loop);
  void Run();

 private:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  void DoRead();
  void OnRead(boost::beast::error_code ec, std::size_t bytes);
  void Upgrade(Request request);
  Response Answer(const Request& request) const;
  void RefuseMalformed(boost::beast::error_code ec);
  void DoWrite(Response response);
  void OnWrite(bool keep_alive, boost::beast::error_code ec, std::size_t bytes);
  void Fail(boost::beast::error_code ec, const char* what);

  boost::beast::tcp_stream stream_;
  const std::shared_ptr<ServerState> state_;
  Loop* const loop_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  // The response on the wire; untouched until its write completes.
  std::optional<Response> response_;
};

}  // namespace bridge::ws

#endif  // BRIDGE_WS_HTTP_SESSION_H_
