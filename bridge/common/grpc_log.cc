#include "bridge/common/grpc_log.h"

#include <grpc/support/log.h>

#include "bridge/common/log.h"

namespace bridge {
namespace {

void OnGrpcLog(gpr_log_func_args* args) {
  // One source for all of gRPC's lines, like libprotobuf's. Never destroyed, as in
  // BRIDGE_LOG: gRPC's threads log until the process ends.
  static LogRateLimiter& source = *new LogRateLimiter;
  LogLevel level = LogLevel::kError;
  if (args->severity == GPR_LOG_SEVERITY_INFO) level = LogLevel::kInfo;
  if (args->severity == GPR_LOG_SEVERITY_DEBUG) level = LogLevel::kDebug;
  Log(source, level, "grpc %s:%d: %s", args->file, args->line, args->message);
}

}  // namespace

void RouteGrpcLogs() {
  static const bool routed = (gpr_set_log_function(&OnGrpcLog), true);
  (void)routed;
}

}  // namespace bridge
