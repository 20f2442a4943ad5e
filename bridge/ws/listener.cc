#include "bridge/ws/listener.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_format.h"
#include "boost/asio/post.hpp"
#include "boost/asio/strand.hpp"
#include "bridge/common/log.h"
#include "bridge/ws/http_session.h"

namespace bridge::ws {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;

Listener::Listener(asio::io_context& ioc, std::shared_ptr<ServerState> state)
    : ioc_(ioc),
      state_(std::move(state)),
      acceptor_(asio::make_strand(ioc)),
      retry_(acceptor_.get_executor()) {}

absl::Status Listener::Open(const tcp::endpoint& endpoint) {
  beast::error_code ec;
  auto fail = [&](const char* what) {
    return absl::UnavailableError(absl::StrFormat("websocket listener: %s %s:%d: %s", what,
                                                  endpoint.address().to_string(), endpoint.port(),
                                                  ec.message()));
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail("open");
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return fail("set_option");
  acceptor_.bind(endpoint, ec);
  if (ec) return fail("bind");
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec) return fail("local_endpoint");
  return absl::OkStatus();
}

void Listener::Run() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] { self->DoAccept(); });
}

void Listener::Stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor_.close(ignored);
    self->retry_.cancel();
  });
}

void Listener::DoAccept() {
  if (!acceptor_.is_open()) return;
  // Each connection gets its own strand: no two handlers of a session run at once.
  acceptor_.async_accept(asio::make_strand(ioc_),
                         beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
}

void Listener::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors and the like: pause rather than spin on the same error.
    BRIDGE_LOG(Warning, "websocket listener: accept: %s", ec.message());
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec) self->DoAccept();
    });
    return;
  }
  std::make_shared<HttpSession>(std::move(socket), state_)->Run();
  DoAccept();
}

}  // namespace bridge::ws
