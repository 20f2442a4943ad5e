#include "bridge/auth/access.h"

#include <utility>

#include "absl/strings/match.h"

namespace bridge::auth {

Access::Access(std::string path) : path_(std::move(path)) {}

const Access& Access::Open() {
  static const Access* const open = new Access("");
  return *open;
}

absl::Status Access::Load() {
  if (!enabled()) return absl::OkStatus();
  absl::StatusOr<std::shared_ptr<const AccessList>> list = AccessList::Load(path_);
  if (!list.ok()) return list.status();
  absl::MutexLock lock(&mu_);
  list_ = *std::move(list);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Grant>> Access::Authenticate(
    std::optional<std::string_view> token) const {
  if (!enabled()) {
    // Not owned: Everything() lives as long as the process.
    return std::shared_ptr<const Grant>(std::shared_ptr<const Grant>(), &Grant::Everything());
  }
  if (!token.has_value() || token->empty()) {
    return absl::UnauthenticatedError("this server needs a token (Authorization: Bearer ...)");
  }
  std::shared_ptr<const AccessList> list;
  {
    absl::MutexLock lock(&mu_);
    list = list_;
  }
  std::shared_ptr<const Grant> grant = list == nullptr ? nullptr : list->Find(*token);
  if (grant == nullptr) return absl::UnauthenticatedError("unknown token");
  return grant;
}

std::optional<std::string_view> Access::BearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(authorization.data(), kScheme.size()),
                              absl::string_view(kScheme.data(), kScheme.size()))) {
    return std::nullopt;
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

}  // namespace bridge::auth
