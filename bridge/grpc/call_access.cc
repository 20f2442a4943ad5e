#include "bridge/grpc/call_access.h"

#include <optional>
#include <string_view>

namespace bridge::grpc_frontend {

absl::StatusOr<std::shared_ptr<const auth::Grant>> AuthenticateCall(
    const auth::Access& access, const ::grpc::CallbackServerContext& context) {
  std::optional<std::string_view> token;
  if (access.enabled()) {
    const auto& metadata = context.client_metadata();
    if (auto it = metadata.find("authorization"); it != metadata.end()) {
      token = auth::Access::BearerToken(std::string_view(it->second.data(), it->second.size()));
    }
  }
  return access.Authenticate(token);
}

}  // namespace bridge::grpc_frontend
