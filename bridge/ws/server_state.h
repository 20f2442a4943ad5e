#ifndef BRIDGE_WS_SERVER_STATE_H_
#define BRIDGE_WS_SERVER_STATE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/auth/access.h"
#include "bridge/hub/hub.h"
#include "bridge/ws/static_files.h"
#include "bridge/ws/ws_options.h"

namespace bridge::ws {

class WsSession;

// Why the listener closed a connection as soon as it accepted it.
enum class ConnectionRefusal { kMaxConnections, kMaxConnectionsPerIp };

// The connection caps' figures, for /metrics.
struct ConnectionStats {
  size_t open = 0;
  size_t max = 0;
  uint64_t refused_max = 0;
  uint64_t refused_per_ip = 0;
};

// What the listener and every session of one WsServer share: the options, the hub, the
// access rules, the static files, the open TCP connections (against the caps), and the set
// of live WebSocket sessions that Shutdown must close.
// Owned jointly (std::shared_ptr) by the server and its sessions, so that a session finishing after
// the server let go still finds it. Thread-safe.
class ServerState : public std::enable_shared_from_this<ServerState> {
 public:
  ServerState(const WsOptions& options, hub::Hub* hub, const auth::Access& access,
              StaticFiles files);
  ServerState(const ServerState&) = delete;
  ServerState& operator=(const ServerState&) = delete;

  const WsOptions& options() const { return options_; }
  hub::Hub* hub() const { return hub_; }
  const auth::Access& access() const { return access_; }
  const StaticFiles& files() const { return files_; }

  // Whether a browser page from `origin` may open a WebSocket.
  bool OriginAllowed(std::string_view origin) const;

  // Counts a new connection from `peer` (an address, as text) against max_connections and
  // max_connections_per_ip. Admitted, it returns the pointer the connection's sessions
  // hold in place of the server's: the connection is counted until the last copy of it
  // goes, which is when its last session is destroyed, with the socket. Over a cap it
  // returns null, says which in `*refusal`, and counts the refusal.
  std::shared_ptr<ServerState> AdmitConnection(std::string peer, ConnectionRefusal* refusal)
      ABSL_LOCKS_EXCLUDED(connections_mu_);
  ConnectionStats connection_stats() const ABSL_LOCKS_EXCLUDED(connections_mu_);

  // Adds a session that completed its handshake; false once Shutdown began, in which
  // case the session must close at once.
  bool Register(WsSession* session, std::weak_ptr<WsSession> ref) ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(WsSession* session) ABSL_LOCKS_EXCLUDED(mu_);
  size_t sessions() const ABSL_LOCKS_EXCLUDED(mu_);

  // Counts WebSocket session objects, from construction to destruction.
  void SessionCreated() { session_objects_.fetch_add(1, std::memory_order_relaxed); }
  void SessionDestroyed() { session_objects_.fetch_sub(1, std::memory_order_relaxed); }
  size_t session_objects() const { return session_objects_.load(std::memory_order_relaxed); }

  // Refuses new sessions from now on and returns the live ones.
  std::vector<std::shared_ptr<WsSession>> BeginShutdown() ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::shared_ptr<WsSession>> Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until every session unregistered, or `deadline`; true if they did.
  bool AwaitNoSessions(absl::Time deadline) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class ConnectionSlot;

  bool NoSessionsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseConnection(const std::string& peer) ABSL_LOCKS_EXCLUDED(connections_mu_);

  const WsOptions options_;
  hub::Hub* const hub_;
  const auth::Access& access_;
  const StaticFiles files_;

  mutable absl::Mutex connections_mu_;
  size_t connections_ ABSL_GUARDED_BY(connections_mu_) = 0;
  absl::flat_hash_map<std::string, size_t> connections_per_ip_ ABSL_GUARDED_BY(connections_mu_);
  uint64_t refused_max_ ABSL_GUARDED_BY(connections_mu_) = 0;
  uint64_t refused_per_ip_ ABSL_GUARDED_BY(connections_mu_) = 0;

  std::atomic<size_t> session_objects_{0};
  mutable absl::Mutex mu_;
  absl::flat_hash_map<WsSession*, std::weak_ptr<WsSession>> sessions_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace bridge::ws

#endif  // BRIDGE_WS_SERVER_STATE_H_
