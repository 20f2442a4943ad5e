#ifndef BRIDGE_GRPC_CALL_ACCESS_H_
#define BRIDGE_GRPC_CALL_ACCESS_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/status/statusor.h"
#include "bridge/auth/access.h"
#include "bridge/auth/grant.h"

namespace bridge::grpc_frontend {

// The grant of a call, from its `authorization: Bearer <token>` metadata; UNAUTHENTICATED
// when the server needs a token and the call has none it knows.
absl::StatusOr<std::shared_ptr<const auth::Grant>> AuthenticateCall(
    const auth::Access& access, const ::grpc::CallbackServerContext& context);

}  // namespace bridge::grpc_frontend

#endif  // BRIDGE_GRPC_CALL_ACCESS_H_
