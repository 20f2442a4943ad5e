#include "bridge/ws/ws_server.h"

#include <algorithm>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "boost/asio/ip/tcp.hpp"
#include "bridge/common/fd_limit.h"
#include "bridge/common/log.h"
#include "bridge/ws/listener.h"
#include "bridge/ws/loop.h"
#include "bridge/ws/server_state.h"
#include "bridge/ws/static_files.h"
#include "bridge/ws/ws_session.h"

namespace bridge::ws {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// "host:port" or "[v6]:port"; the host must be a literal address, "localhost" or empty.
absl::StatusOr<tcp::endpoint> ParseAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("websocket address \"%s\" is not host:port", address));
  }
  absl::string_view host = absl::string_view(address).substr(0, colon);
  if (absl::ConsumePrefix(&host, "[") && !absl::ConsumeSuffix(&host, "]")) {
    return absl::InvalidArgumentError(
        absl::StrFormat("websocket address \"%s\": bad host", address));
  }
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(std::string(host), ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrFormat("websocket address \"%s\": bad host: %s", address, ec.message()));
  }
  return tcp::endpoint(ip, static_cast<unsigned short>(port));
}

}  // namespace

WsServer::WsServer(const WsOptions& options, hub::Hub* hub, const auth::Access& access)
    : options_(options), hub_(hub), access_(access) {}

WsServer::~WsServer() { Shutdown(absl::ZeroDuration()); }

absl::Status WsServer::Start() {
  if (state_ != nullptr) return absl::FailedPreconditionError("WsServer::Start called twice");
  auto endpoint = ParseAddress(options_.address);
  if (!endpoint.ok()) return endpoint.status();
  StaticFiles files;
  if (absl::Status st = files.Load(options_.web_root); !st.ok()) return st;

  const int threads = options_.threads > 0
                          ? options_.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  std::vector<Loop*> loops;
  for (int i = 0; i < threads; ++i) {
    loops_.push_back(std::make_shared<Loop>());
    loops.push_back(loops_.back().get());
  }
  WsOptions options = options_;
  if (options.max_connections == 0) {
    options.max_connections = std::max<uint64_t>(1, CurrentFdLimit().soft / 4 * 3);
  }
  state_ = std::make_shared<ServerState>(options, hub_, access_, std::move(files));
  listener_ = std::make_shared<Listener>(std::move(loops), state_);
  if (absl::Status st = listener_->Open(*endpoint); !st.ok()) {
    listener_.reset();
    state_.reset();
    loops_.clear();
    return st;
  }
  port_ = listener_->port();
  listener_->Run();
  for (auto& loop : loops_) loop->Start();
  running_ = true;
  BRIDGE_LOG(Info,
             "websocket: listening on %s:%d (%d threads, at most %d connections, %d per "
             "address)",
             endpoint->address().to_string(), port_, threads, options.max_connections,
             options.max_connections_per_ip);
  return absl::OkStatus();
}

size_t WsServer::session_count() const { return state_ == nullptr ? 0 : state_->sessions(); }

size_t WsServer::session_objects() const {
  return state_ == nullptr ? 0 : state_->session_objects();
}

ConnectionStats WsServer::connection_stats() const {
  return state_ == nullptr ? ConnectionStats{} : state_->connection_stats();
}

void WsServer::Shutdown(absl::Duration grace) {
  if (!running_) return;
  running_ = false;
  listener_->Stop();
  auto sessions = state_->BeginShutdown();
  BRIDGE_LOG(Info, "websocket: closing %d sockets", sessions.size());
  for (const auto& s : sessions) s->GoAway();
  sessions.clear();
  if (!state_->AwaitNoSessions(absl::Now() + grace)) {
    // Peers that did not finish the close handshake in time lose the connection.
    for (const auto& s : state_->Snapshot()) s->Abort();
    state_->AwaitNoSessions(absl::Now() + absl::Seconds(1));
  }
  for (auto& loop : loops_) loop->Stop();
  listener_.reset();
  // Destroys the handlers still queued, and with them the sessions they hold; each
  // session left releases its hub subscriber as it goes. The loops stay, for a hub event
  // racing with this to find.
  for (auto& loop : loops_) loop->Discard();
  // Every reference to a session lives in its loop's handlers and lists, or is taken
  // on its loop: one left now would be destroyed after its io_context.
  if (const size_t left = state_->session_objects(); left > 0) {
    BRIDGE_LOG(Error, "websocket: %d sessions outlived their loops", left);
  }
}

}  // namespace bridge::ws
