#ifndef BRIDGE_WS_SERVER_STATE_H_
#define BRIDGE_WS_SERVER_STATE_H_

#include <atomic>
#include <memory>
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

// What the listener and every session of one WsServer share: the options, the hub, the
// access rules, the static files, and the set of live WebSocket sessions that Shutdown must close.
// Owned jointly (std::shared_ptr) by the server and its sessions, so that a session finishing after
// the server let go still finds it. Thread-safe.
class ServerState {
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
  bool NoSessionsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const WsOptions options_;
  hub::Hub* const hub_;
  const auth::Access& access_;
  const StaticFiles files_;

  std::atomic<size_t> session_objects_{0};
  mutable absl::Mutex mu_;
  absl::flat_hash_map<WsSession*, std::weak_ptr<WsSession>> sessions_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace bridge::ws

#endif  // BRIDGE_WS_SERVER_STATE_H_
