#ifndef BRIDGE_WS_WS_OPTIONS_H_
#define BRIDGE_WS_WS_OPTIONS_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "bridge/hub/subscriber.h"

namespace bridge::ws {

// Everything the WebSocket front end is told; main fills it from flags, tests directly.
struct WsOptions {
  // host:port to listen on ("[::]:8080" for IPv6); port 0 picks a free one.
  std::string address = "0.0.0.0:8080";
  // Threads that run the event loop; 0 means one per core.
  int threads = 0;
  // Open TCP connections (HTTP and WebSocket) in all, and from one client address; a
  // connection over either is closed as soon as it is accepted. max_connections 0: 3/4 of
  // the process' descriptor limit at Start, which leaves the rest (gRPC's connections and
  // its acceptor, Redis) room. max_connections_per_ip 0: no per-address cap.
  size_t max_connections = 0;
  size_t max_connections_per_ip = 256;
  // Largest client frame; a larger one closes the socket with 1009 (too big).
  size_t max_frame_bytes = 64 << 10;
  // Channels plus patterns one socket may hold at once.
  size_t max_subscriptions = 256;
  // Whether clients may send "publish" frames.
  bool allow_publish = false;
  // Origins ("https://app.example.com") allowed to open /ws; empty allows every origin,
  // "*" too. A request without an Origin header (not a browser) is always allowed.
  std::vector<std::string> allowed_origins;
  // The server pings each socket this often; a socket from which nothing (not even a
  // pong) arrived for idle_timeout is closed and its subscriptions released.
  absl::Duration ping_interval = absl::Seconds(20);
  absl::Duration idle_timeout = absl::Seconds(60);
  // Client frames per second a socket may send on average, and the burst above that;
  // a socket beyond them gets a rate_limited error and is closed with 1008.
  double max_client_frames_per_sec = 50;
  double client_frame_burst = 100;
  // Time allowed to read an HTTP request and finish the WebSocket handshake, and to
  // finish a close handshake before the TCP connection is cut.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Folder served at "/" (index.html) and below; empty serves no files. Read once, at
  // Start.
  std::string web_root;
  // The text served at GET /metrics (Prometheus' text format); none: /metrics is 404.
  // Called on an I/O thread for each request.
  std::function<std::string()> metrics;
  // Why the process is unhealthy, empty when it is healthy: GET /healthz answers 503 with
  // it, else 200. Called on an I/O thread for each request; none: the hub's Redis state
  // alone decides.
  std::function<std::string()> health_problem;
  // Queue bounds and slow-consumer policy of each socket's hub subscriber (the same as
  // gRPC streams get); max_topics is replaced by max_subscriptions.
  hub::SubscriberOptions subscriber;
};

}  // namespace bridge::ws

#endif  // BRIDGE_WS_WS_OPTIONS_H_
