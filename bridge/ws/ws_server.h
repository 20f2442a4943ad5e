#ifndef BRIDGE_WS_WS_SERVER_H_
#define BRIDGE_WS_WS_SERVER_H_

#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bridge/hub/hub.h"
#include "bridge/ws/ws_options.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace bridge::ws {

class Listener;
class ServerState;

// The WebSocket front end: one listener serving /ws (each socket one hub subscriber),
// /healthz and the browser page, on a small pool of threads running one io_context.
// Owned by the application; the hub must outlive it.
class WsServer {
 public:
  WsServer(const WsOptions& options, hub::Hub* hub);
  // Shuts down, without grace, if Shutdown was not called.
  ~WsServer();
  WsServer(const WsServer&) = delete;
  WsServer& operator=(const WsServer&) = delete;

  // Loads the web root, binds, and starts the threads. Call once.
  absl::Status Start();
  // The bound port (useful with port 0); 0 before Start.
  int port() const { return port_; }
  // Stops accepting, closes every WebSocket with 1001 (going away), waits up to `grace`
  // for the close handshakes, cuts what is left, and joins the threads. Idempotent.
  void Shutdown(absl::Duration grace);

  // Open WebSocket sessions.
  size_t session_count() const;

 private:
  const WsOptions options_;
  hub::Hub* const hub_;
  std::unique_ptr<boost::asio::io_context> ioc_;
  std::shared_ptr<ServerState> state_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::thread> threads_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace bridge::ws

#endif  // BRIDGE_WS_WS_SERVER_H_
