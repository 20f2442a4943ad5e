#ifndef BRIDGE_GRPC_STATUS_UTIL_H_
#define BRIDGE_GRPC_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace bridge::grpc_frontend {

// absl and gRPC share their code numbers; this keeps code and message.
inline ::grpc::Status ToGrpcStatus(const absl::Status& status) {
  return ::grpc::Status(static_cast<::grpc::StatusCode>(status.code()),
                        std::string(status.message()));
}

}  // namespace bridge::grpc_frontend

#endif  // BRIDGE_GRPC_STATUS_UTIL_H_
