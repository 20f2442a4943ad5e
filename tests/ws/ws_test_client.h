#ifndef BRIDGE_TESTS_WS_WS_TEST_CLIENT_H_
#define BRIDGE_TESTS_WS_WS_TEST_CLIENT_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http/verb.hpp"
#include "boost/beast/websocket.hpp"
#include "nlohmann/json.hpp"

namespace bridge::ws::testing {

// A real Beast WebSocket client for tests. Every operation waits at most its timeout
// (running a private io_context for that long), so a broken server fails a test
// instead of hanging it.
class WsTestClient {
 public:
  struct Options {
    std::string target = "/ws";
    // Sent as the Origin header when not empty.
    std::string origin;
    // Sent as the Authorization header when not empty.
    std::string authorization;
    absl::Duration timeout = absl::Seconds(10);
  };

  // Connects to 127.0.0.1:port and upgrades. A refused upgrade is an error whose
  // message holds the HTTP status ("HTTP 403").
  static absl::StatusOr<std::unique_ptr<WsTestClient>> Connect(int port, const Options& options);
  static absl::StatusOr<std::unique_ptr<WsTestClient>> Connect(int port) {
    return Connect(port, Options{});
  }

  absl::Status SendText(std::string_view text);
  absl::Status SendBinary(std::string_view bytes);
  absl::Status SendJson(const nlohmann::json& frame) { return SendText(frame.dump()); }

  // The next frame, parsed. After the server closed, an error; close_code() says how.
  absl::StatusOr<nlohmann::json> Read(absl::Duration timeout = absl::Seconds(10));
  // Reads frames until one with this "op" (skipping others), or an error.
  absl::StatusOr<nlohmann::json> ReadOp(std::string_view op,
                                        absl::Duration timeout = absl::Seconds(10));
  // Reads until the server closes the socket; the close code (1006 if no close frame).
  absl::StatusOr<int> ReadUntilClosed(absl::Duration timeout = absl::Seconds(10));
  // Sends "ping" and waits for "pong": every frame sent before was handled.
  absl::Status Barrier();

  int close_code() const { return close_code_; }
  // Why the last read failed.
  const std::string& last_error() const { return last_error_; }
  // Stops reading from the socket at all: the server sees a peer that never reads.
  boost::beast::websocket::stream<boost::beast::tcp_stream>& stream() { return ws_; }

 private:
  WsTestClient();
  // Runs the io_context until `done` or the timeout; on timeout cancels and drains.
  bool RunUntil(const bool& done, absl::Duration timeout);

  boost::asio::io_context ioc_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buffer_;
  int close_code_ = 0;
  std::string last_error_;
};

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string content_length;
  std::string allow;
  std::string body;
};

// One request without a body to 127.0.0.1:port, within the timeout.
absl::StatusOr<HttpReply> HttpRequest(int port, boost::beast::http::verb method,
                                      const std::string& target,
                                      absl::Duration timeout = absl::Seconds(10));
inline absl::StatusOr<HttpReply> HttpGet(int port, const std::string& target,
                                         absl::Duration timeout = absl::Seconds(10)) {
  return HttpRequest(port, boost::beast::http::verb::get, target, timeout);
}

}  // namespace bridge::ws::testing

#endif  // BRIDGE_TESTS_WS_WS_TEST_CLIENT_H_
