#ifndef BRIDGE_APP_METRICS_H_
#define BRIDGE_APP_METRICS_H_

#include <cstddef>
#include <string>

#include "bridge/hub/hub.h"
#include "bridge/redis/redis_upstream.h"
#include "bridge/ws/server_state.h"

namespace bridge {

// What /metrics reports, gathered by App from its parts at each request.
struct MetricsSnapshot {
  bool healthy = false;
  // False once a self check found the gRPC port not accepting new connections.
  bool grpc_accepting = true;
  hub::HubStats hub;
  redis::RedisUpstreamStats redis;
  size_t grpc_streams = 0;
  size_t websockets = 0;
  // The HTTP/WebSocket listener's connections (all zero without one).
  ws::ConnectionStats http_connections;
};

// The snapshot in Prometheus' text exposition format (version 0.0.4): every metric with
// its HELP and TYPE lines, names prefixed `bridge_`, counters ending in `_total`.
std::string PrometheusText(const MetricsSnapshot& m);

}  // namespace bridge

#endif  // BRIDGE_APP_METRICS_H_
