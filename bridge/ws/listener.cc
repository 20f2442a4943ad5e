#include "bridge/ws/listener.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_format.h"
#include "boost/asio/post.hpp"
#include "bridge/common/log.h"
#include "bridge/ws/http_session.h"

namespace bridge::ws {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;

Listener::Listener(std::vector<Loop*> loops, std::shared_ptr<ServerState> state)
    : loops_(std::move(loops)),
      state_(std::move(state)),
      acceptor_(loops_.front()->context()),
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
  // Connections go to the loops in turn; each then lives on its loop's thread alone.
  Loop* loop = loops_[next_loop_];
  acceptor_.async_accept(loop->context(),
                         beast::bind_front_handler(&Listener::OnAccept, shared_from_this(), loop));
}

void Listener::OnAccept(Loop* loop, beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors and the like: pause rather than spin on the same error.
    Log(accept_errors_, LogLevel::kWarning, "websocket listener: accept: %s (retrying)",
        ec.message());
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec) self->DoAccept();
    });
    return;
  }
  beast::error_code ignored;
  const tcp::endpoint peer = socket.remote_endpoint(ignored);
  if (ignored) return DoAccept();  // Gone already; the socket closes as it goes.
  ConnectionRefusal refusal;
  std::shared_ptr<ServerState> state =
      state_->AdmitConnection(peer.address().to_string(), &refusal);
  if (state == nullptr) {
    // Closed before anything is read: each refusal costs one descriptor for an instant.
    BRIDGE_LOG(Warning, "websocket listener: refused a connection from %s: over %s",
               peer.address().to_string(),
               refusal == ConnectionRefusal::kMaxConnections ? "--ws_max_connections"
                                                             : "--ws_max_connections_per_ip");
    socket.close(ignored);
    return DoAccept();
  }
  // Frames go out when written, not held back for the peer's ACK of the previous one:
  // CoalescingStream already puts what is queued into one send.
  socket.set_option(tcp::no_delay(true), ignored);
  std::make_shared<HttpSession>(std::move(socket), std::move(state), loop)->Run();
  next_loop_ = (next_loop_ + 1) % loops_.size();
  DoAccept();
}

}  // namespace bridge::ws
