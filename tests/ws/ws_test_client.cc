#include "tests/ws/ws_test_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/http.hpp"

namespace bridge::ws::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using asio::ip::tcp;

namespace {

absl::Status Error(absl::string_view what, const beast::error_code& ec) {
  return absl::UnavailableError(absl::StrCat(what, ": ", ec.message()));
}

}  // namespace

WsTestClient::WsTestClient() : ws_(ioc_) {}

bool WsTestClient::RunUntil(const bool& done, absl::Duration timeout) {
  ioc_.restart();
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  while (!done && ioc_.run_one_until(deadline) > 0) {
  }
  if (done) return true;
  beast::get_lowest_layer(ws_).cancel();
  ioc_.restart();
  ioc_.run();
  return false;
}

absl::StatusOr<std::unique_ptr<WsTestClient>> WsTestClient::Connect(int port,
                                                                    const Options& options) {
  std::unique_ptr<WsTestClient> c(new WsTestClient());
  beast::error_code ec;
  bool done = false;
  beast::get_lowest_layer(c->ws_).async_connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
      [&](beast::error_code e) {
        ec = e;
        done = true;
      });
  if (!c->RunUntil(done, options.timeout)) return absl::DeadlineExceededError("connect");
  if (ec) return Error("connect", ec);
  c->ws_.set_option(websocket::stream_base::decorator([options](websocket::request_type& req) {
    if (!options.origin.empty()) req.set(http::field::origin, options.origin);
    if (!options.authorization.empty()) req.set(http::field::authorization, options.authorization);
  }));
  websocket::response_type res;
  done = false;
  c->ws_.async_handshake(res, absl::StrCat("127.0.0.1:", port), options.target,
                         [&](beast::error_code e) {
                           ec = e;
                           done = true;
                         });
  if (!c->RunUntil(done, options.timeout)) return absl::DeadlineExceededError("handshake");
  if (ec == websocket::error::upgrade_declined) {
    return absl::PermissionDeniedError(absl::StrCat("HTTP ", res.result_int()));
  }
  if (ec) return Error("handshake", ec);
  return c;
}

absl::Status WsTestClient::SendText(std::string_view text) {
  ws_.text(true);
  beast::error_code ec;
  bool done = false;
  ws_.async_write(asio::buffer(text.data(), text.size()), [&](beast::error_code e, size_t) {
    ec = e;
    done = true;
  });
  if (!RunUntil(done, absl::Seconds(10))) return absl::DeadlineExceededError("write");
  return ec ? Error("write", ec) : absl::OkStatus();
}

absl::Status WsTestClient::SendBinary(std::string_view bytes) {
  ws_.binary(true);
  beast::error_code ec;
  bool done = false;
  ws_.async_write(asio::buffer(bytes.data(), bytes.size()), [&](beast::error_code e, size_t) {
    ec = e;
    done = true;
  });
  const bool finished = RunUntil(done, absl::Seconds(10));
  ws_.text(true);
  if (!finished) return absl::DeadlineExceededError("write");
  return ec ? Error("write", ec) : absl::OkStatus();
}

absl::StatusOr<nlohmann::json> WsTestClient::Read(absl::Duration timeout) {
  beast::error_code ec;
  bool done = false;
  buffer_.clear();
  ws_.async_read(buffer_, [&](beast::error_code e, size_t) {
    ec = e;
    done = true;
  });
  if (!RunUntil(done, timeout)) return absl::DeadlineExceededError("read timed out");
  if (ec) {
    // The close frame, when one came, tells how the server closed, even if the TCP
    // teardown after it failed (the server may cut first).
    close_code_ = ws_.reason().code != websocket::close_code::none ? ws_.reason().code : 1006;
    last_error_ = ec.message();
    return absl::UnavailableError(absl::StrCat("read: ", ec.message(), " (close ", close_code_, " ",
                                               ws_.reason().reason.c_str(), ")"));
  }
  auto json = nlohmann::json::parse(beast::buffers_to_string(buffer_.data()), nullptr, false);
  if (json.is_discarded()) return absl::InternalError("server sent a frame that is not JSON");
  return json;
}

absl::StatusOr<nlohmann::json> WsTestClient::ReadOp(std::string_view op, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    auto frame = Read(deadline - absl::Now());
    if (!frame.ok()) return frame.status();
    if ((*frame)["op"] == op) return frame;
  }
}

absl::StatusOr<int> WsTestClient::ReadUntilClosed(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    auto frame = Read(deadline - absl::Now());
    if (frame.ok()) continue;
    if (close_code_ != 0) return close_code_;
    return frame.status();
  }
}

absl::Status WsTestClient::Barrier() {
  if (absl::Status st = SendText(R"({"op":"ping"})"); !st.ok()) return st;
  return ReadOp("pong").status();
}

absl::StatusOr<HttpReply> HttpRequest(int port, http::verb method, const std::string& target,
                                      absl::Duration timeout) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(absl::ToChronoNanoseconds(timeout));
  http::request<http::empty_body> req{method, target, 11};
  req.set(http::field::host, absl::StrCat("127.0.0.1:", port));
  req.keep_alive(false);
  http::response_parser<http::string_body> parser;
  // The answer to a HEAD has the headers of a body it does not carry.
  parser.skip(method == http::verb::head);
  beast::flat_buffer buffer;
  beast::error_code result;
  stream.async_connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
      [&](beast::error_code ec) {
        if (ec) {
          result = ec;
          return;
        }
        http::async_write(stream, req, [&](beast::error_code ec, size_t) {
          if (ec) {
            result = ec;
            return;
          }
          http::async_read(stream, buffer, parser,
                           [&](beast::error_code ec, size_t) { result = ec; });
        });
      });
  ioc.run();
  if (result) {
    const auto name = http::to_string(method);
    return Error(absl::string_view(name.data(), name.size()), result);
  }
  const auto& res = parser.get();
  return HttpReply{static_cast<int>(res.result_int()), std::string(res[http::field::content_type]),
                   std::string(res[http::field::content_length]),
                   std::string(res[http::field::allow]), res.body()};
}

}  // namespace bridge::ws::testing
