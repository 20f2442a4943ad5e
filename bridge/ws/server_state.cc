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
