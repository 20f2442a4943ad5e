#ifndef BRIDGE_COMMON_GRPC_LOG_H_
#define BRIDGE_COMMON_GRPC_LOG_H_

namespace bridge {

// Sends gRPC core's log lines (gpr_log: a failed accept, a bad HTTP/2 frame from a client)
// through the bridge log, under a rate limit of their own. gRPC still filters them by
// GRPC_VERBOSITY (ERROR unless set). Takes effect once; later calls do nothing.
void RouteGrpcLogs();

}  // namespace bridge

#endif  // BRIDGE_COMMON_GRPC_LOG_H_
