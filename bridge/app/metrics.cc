#include "bridge/app/metrics.h"

#include <cstdint>
#include <initializer_list>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace bridge {
namespace {

// One metric: its HELP and TYPE, then one sample per (labels, value).
void Metric(std::string* out, const char* name, const char* type, const char* help,
            std::initializer_list<std::pair<const char*, uint64_t>> samples) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  for (const auto& [labels, value] : samples) absl::StrAppend(out, name, labels, " ", value, "\n");
}

// A gauge in seconds; NaN (which Prometheus' format allows) for an infinite duration,
// the "none yet" of the stats.
void SecondsGauge(std::string* out, const char* name, const char* help, absl::Duration value) {
  absl::StrAppend(
      out, "# HELP ", name, " ", help, "\n# TYPE ", name, " gauge\n", name, " ",
      value == absl::InfiniteDuration() ? "NaN" : absl::StrCat(absl::ToDoubleSeconds(value)), "\n");
}

}  // namespace

std::string PrometheusText(const MetricsSnapshot& m) {
  std::string out;
  Metric(&out, "bridge_healthy", "gauge",
         "1 while Redis is connected, its delivery probes come back, and every subscription is "
         "live.",
         {{"", m.healthy}});
  Metric(&out, "bridge_grpc_accepting", "gauge",
         "0 once a new connection to the gRPC port went unanswered (its listener stopped "
         "accepting: restart).",
         {{"", m.grpc_accepting}});
  Metric(&out, "bridge_redis_connected", "gauge", "Whether each connection to Redis is up.",
         {{"{connection=\"subscriber\"}", m.redis.subscriber_connected},
          {"{connection=\"publisher\"}", m.redis.publisher_connected}});
  Metric(&out, "bridge_redis_connect_failures_total", "counter",
         "Connection attempts to Redis that failed.", {{"", m.redis.connect_failures}});
  Metric(&out, "bridge_redis_disconnects_total", "counter",
         "Connections to Redis lost after they were ready.", {{"", m.redis.disconnects}});
  Metric(&out, "bridge_redis_subscribes_refused_total", "counter",
         "SUBSCRIBEs and PSUBSCRIBEs Redis refused (an ACL without the channel).",
         {{"", m.redis.subscribes_refused}});
  Metric(&out, "bridge_redis_probes_sent_total", "counter",
         "Delivery probes published to the subscriber connections' probe channels (on a Redis "
         "Cluster, summed over its connections).",
         {{"", m.redis.probes_sent}});
  Metric(&out, "bridge_redis_probes_lost_total", "counter",
         "Delivery probes not back within --probe_timeout (each dropped and reconnected its "
         "subscriber connection alone).",
         {{"", m.redis.probes_lost}});
  SecondsGauge(&out, "bridge_redis_probe_round_trip_seconds",
               "Round trip of the most recent delivery probe that came back; on a Redis Cluster, "
               "the slowest of its connections' most recent ones (NaN before one).",
               m.redis.probe_last_round_trip);
  Metric(&out, "bridge_publishes_rejected_total", "counter",
         "Publishes answered UNAVAILABLE because too many were waiting for Redis.",
         {{"", m.redis.publishes_rejected}});
  Metric(&out, "bridge_publish_connection_resets_total", "counter",
         "Times the publish connection was dropped because Redis did not answer in time.",
         {{"", m.redis.publish_resets}});
  Metric(&out, "bridge_subscribers", "gauge",
         "Open subscribers: gRPC Subscribe streams and WebSockets.",
         {{"{frontend=\"grpc\"}", m.grpc_streams}, {"{frontend=\"websocket\"}", m.websockets}});
  Metric(&out, "bridge_http_connections", "gauge",
         "Open TCP connections to the HTTP/WebSocket port, WebSockets included.",
         {{"", m.http_connections.open}});
  Metric(&out, "bridge_http_connections_max", "gauge",
         "The cap on them (--ws_max_connections, or 3/4 of the descriptor limit).",
         {{"", m.http_connections.max}});
  Metric(&out, "bridge_connections_refused_total", "counter",
         "HTTP/WebSocket connections closed on accept, over the cap in all or per address.",
         {{"{reason=\"max_connections\"}", m.http_connections.refused_max},
          {"{reason=\"max_connections_per_ip\"}", m.http_connections.refused_per_ip}});
  Metric(&out, "bridge_topics", "gauge",
         "Channels and patterns Bridge holds in Redis (or is subscribing or unsubscribing).",
         {{"{kind=\"channel\"}", m.hub.channels}, {"{kind=\"pattern\"}", m.hub.patterns}});
  Metric(&out, "bridge_messages_total", "counter",
         "Messages from Redis fanned out to at least one subscriber.", {{"", m.hub.messages}});
  Metric(&out, "bridge_deliveries_total", "counter",
         "Messages queued for subscribers (one per message and subscriber).",
         {{"", m.hub.deliveries}});
  Metric(&out, "bridge_slow_consumer_dropped_messages_total", "counter",
         "Messages slow subscribers lost (each reported to them in a gap).", {{"", m.hub.dropped}});
  Metric(&out, "bridge_slow_consumer_disconnects_total", "counter",
         "Subscribers closed for reading too slowly (--slow_consumer=disconnect).",
         {{"", m.hub.slow_consumers_disconnected}});
  Metric(&out, "bridge_history_read_messages_total", "counter",
         "Durable channels: messages read back from the history, by Bridge's recovery after "
         "its own Redis outage (once per channel) or for subscribers that resumed.",
         {{"{for=\"recovery\"}", m.hub.recovered_messages},
          {"{for=\"resume\"}", m.hub.resumed_messages}});
  Metric(&out, "bridge_resumes_total", "counter",
         "Durable channels: subscriptions that resumed from a position.", {{"", m.hub.resumes}});
  Metric(&out, "bridge_history_lost_total", "counter",
         "Durable channels: recoveries and resumes that found the history no longer reaching "
         "back (a history_lost gap).",
         {{"", m.hub.history_lost}});
  return out;
}

}  // namespace bridge
