#include "bridge/ws/server_state.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace bridge::ws {

ServerState::ServerState(const WsOptions& options, hub::Hub* hub, const auth::Access& access,
                         StaticFiles files)
    : options_(options), hub_(hub), access_(access), files_(std::move(files)) {}

bool ServerState::OriginAllowed(std::string_view value) const {
  if (options_.allowed_origins.empty()) return true;
  // Browsers send no trailing slash, but people write one in flags.
  const absl::string_view origin =
      absl::StripSuffix(absl::string_view(value.data(), value.size()), "/");
  for (const std::string& allowed : options_.allowed_origins) {
    if (allowed == "*" || absl::EqualsIgnoreCase(absl::StripSuffix(allowed, "/"), origin)) {
      return true;
    }
  }
  return false;
}

// Holds one connection's place in the counts; see AdmitConnection.
class ServerState::ConnectionSlot {
 public:
  ConnectionSlot(std::shared_ptr<ServerState> state, std::string peer)
      : state_(std::move(state)), peer_(std::move(peer)) {}
  ~ConnectionSlot() { state_->ReleaseConnection(peer_); }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;

 private:
  const std::shared_ptr<ServerState> state_;
  const std::string peer_;
};

std::shared_ptr<ServerState> ServerState::AdmitConnection(std::string peer,
                                                          ConnectionRefusal* refusal) {
  {
    absl::MutexLock lock(&connections_mu_);
    if (options_.max_connections > 0 && connections_ >= options_.max_connections) {
      ++refused_max_;
      *refusal = ConnectionRefusal::kMaxConnections;
      return nullptr;
    }
    size_t& from_peer = connections_per_ip_[peer];
    if (options_.max_connections_per_ip > 0 && from_peer >= options_.max_connections_per_ip) {
      ++refused_per_ip_;
      *refusal = ConnectionRefusal::kMaxConnectionsPerIp;
      return nullptr;
    }
    ++from_peer;
    ++connections_;
  }
  // The sessions know no more than a ServerState pointer, so the slot rides on it: the
  // aliasing constructor shares the slot's ownership and points at this.
  auto slot = std::make_shared<ConnectionSlot>(shared_from_this(), std::move(peer));
  return std::shared_ptr<ServerState>(std::move(slot), this);
}

void ServerState::ReleaseConnection(const std::string& peer) {
  absl::MutexLock lock(&connections_mu_);
  --connections_;
  auto it = connections_per_ip_.find(peer);
  if (it != connections_per_ip_.end() && --it->second == 0) connections_per_ip_.erase(it);
}

ConnectionStats ServerState::connection_stats() const {
  absl::MutexLock lock(&connections_mu_);
  return {.open = connections_,
          .max = options_.max_connections,
          .refused_max = refused_max_,
          .refused_per_ip = refused_per_ip_};
}

bool ServerState::Register(WsSession* session, std::weak_ptr<WsSession> ref) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return false;
  sessions_.emplace(session, std::move(ref));
  return true;
}

void ServerState::Unregister(WsSession* session) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(session);
}

bool ServerState::NoSessionsLocked() const { return sessions_.empty(); }

size_t ServerState::sessions() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

std::vector<std::shared_ptr<WsSession>> ServerState::BeginShutdown() {
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
  }
  return Snapshot();
}

std::vector<std::shared_ptr<WsSession>> ServerState::Snapshot() const {
  std::vector<std::shared_ptr<WsSession>> out;
  absl::MutexLock lock(&mu_);
  out.reserve(sessions_.size());
  for (const auto& [raw, ref] : sessions_) {
    if (auto s = ref.lock()) out.push_back(std::move(s));
  }
  return out;
}

bool ServerState::AwaitNoSessions(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithDeadline(absl::Condition(this, &ServerState::NoSessionsLocked), deadline);
}

}  // namespace bridge::ws
