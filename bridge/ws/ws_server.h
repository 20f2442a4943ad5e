#ifndef BRIDGE_WS_WS_SERVER_H_
#define BRIDGE_WS_WS_SERVER_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bridge/auth/access.h"
#include "bridge/hub/hub.h"
#include "bridge/ws/server_state.h"
#include "bridge/ws/ws_options.h"

namespace bridge::ws {

class Listener;
class Loop;

// The WebSocket front end: one listener serving /ws (each socket one hub subscriber),
// /healthz and the browser page, on a few I/O threads (loops), each with its own
// io_context and its share of the connections.
// Owned by the application; the hub and `access` (who may subscribe to and publish what)
// must outlive it.
class WsServer {
 public:
  WsServer(const WsOptions& options, hub::Hub* hub,
           const auth::Access& access = auth::Access::Open());
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
  // WebSocket session objects alive, open or not; 0 once Shutdown returned.
  size_t session_objects() const;
  // Open connections, their cap, and the connections refused over the caps.
  ConnectionStats connection_stats() const;

 private:
  const WsOptions options_;
  hub::Hub* const hub_;
  const auth::Access& access_;
  // Shared with the hub sinks and publish callbacks of the sessions, which may call in
  // after the server is gone.
  std::vector<std::shared_ptr<Loop>> loops_;
  std::shared_ptr<ServerState> state_;
  std::shared_ptr<Listener> listener_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace bridge::ws

#endif  // BRIDGE_WS_WS_SERVER_H_
