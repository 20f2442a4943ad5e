#ifndef BRIDGE_APP_APP_H_
#define BRIDGE_APP_APP_H_

#include <grpcpp/grpcpp.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "bridge/auth/access.h"
#include "bridge/grpc/bridge_service.h"
#include "bridge/hub/hub.h"
#include "bridge/redis/cluster_upstream.h"
#include "bridge/redis/redis_upstream.h"
#include "bridge/ws/ws_options.h"
#include "bridge/ws/ws_server.h"

namespace bridge {

struct AppOptions {
  redis::RedisUpstreamOptions redis;
  hub::HubOptions hub;
  // Bounds of every subscriber (gRPC stream or WebSocket); for gRPC, max_topics is the
  // most channels plus patterns one Subscribe may name.
  hub::SubscriberOptions subscriber;
  // host:port; port 0 picks a free one (see App::grpc_port).
  std::string grpc_addr = "0.0.0.0:50051";
  // gRPC server reflection (what `grpcurl list` reads). Off hides the API's description
  // from clients, which an access file alone does not: reflection needs no token.
  bool grpc_reflection = true;
  // HTTP/2 keepalive pings to idle clients, and how long to wait for the answer.
  absl::Duration grpc_keepalive_time = absl::Seconds(30);
  absl::Duration grpc_keepalive_timeout = absl::Seconds(10);
  // The WebSocket front end; an empty ws.address runs none. Its subscribers get the
  // bounds and policy of `subscriber` above (ws.subscriber is ignored), and
  // ws.max_subscriptions in place of max_topics.
  ws::WsOptions ws = [] {
    ws::WsOptions none;
    none.address.clear();
    return none;
  }();
  // The access file (tokens and what each may subscribe to and publish to); empty: every
  // client may do everything.
  std::string access_file;
  // How often Bridge opens a new connection to its own gRPC port and asks its health
  // service, to notice a gRPC listener that stopped accepting (gRPC 1.51 gives up after
  // one failed accept, e.g. out of descriptors); zero: never.
  absl::Duration grpc_self_check_interval = absl::Seconds(10);
  // How long Shutdown waits for streams to finish before cancelling them. WebSocket close
  // handshakes get at most half of it; the gRPC drain what they leave, and at least half.
  absl::Duration shutdown_grace = absl::Seconds(5);
};

// The whole server, wired: the Redis upstream on its own thread, the hub, and the
// front ends. main() builds the options from flags and runs one; tests run it in-process.
class App {
 public:
  explicit App(AppOptions options);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Listens and starts connecting to Redis (which need not be up yet).
  absl::Status Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Drains: stops accepting, finishes every stream with UNAVAILABLE, closes Redis,
  // within shutdown_grace. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  int grpc_port() const { return grpc_port_; }
  // The WebSocket port (0 when there is no WebSocket listener).
  int ws_port() const { return ws_server_ == nullptr ? 0 : ws_server_->port(); }
  hub::Hub& hub() { return *hub_; }
  redis::RedisUpstreamStats upstream_stats() const;
  // What GET /metrics serves (Prometheus' text format).
  std::string MetricsText() const;
  // Reads the access file again (on SIGHUP); on an error the rules in force stay.
  absl::Status ReloadAccess() { return access_.Load(); }

 private:
  void OnHealthChange(bool healthy) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs on self_check_thread_ until Shutdown: the check every grpc_self_check_interval.
  void SelfCheckLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // Why /healthz answers 503, empty when it answers 200.
  std::string HealthProblem() const ABSL_LOCKS_EXCLUDED(mu_);
  // Whether a Health/Check over a new connection got an answer.
  bool GrpcAnswersNewConnection() ABSL_LOCKS_EXCLUDED(mu_);
  void PublishServingStatus() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops whichever upstream runs; idempotent.
  void StopUpstream();

  const AppOptions options_;
  auth::Access access_;
  boost::asio::io_context redis_io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> redis_work_;
  std::thread redis_thread_;
  // One of the two, as the Redis URL says: one server, or a cluster.
  std::unique_ptr<redis::RedisUpstream> upstream_;
  std::unique_ptr<redis::ClusterUpstream> cluster_upstream_;
  std::unique_ptr<hub::Hub> hub_;
  std::unique_ptr<grpc_frontend::BridgeService> service_;
  std::unique_ptr<::grpc::Server> grpc_server_;
  std::unique_ptr<ws::WsServer> ws_server_;
  int grpc_port_ = 0;
  std::thread self_check_thread_;
  absl::Notification stop_self_check_;

  mutable absl::Mutex mu_;
  bool healthy_ ABSL_GUARDED_BY(mu_) = false;
  // False once a self check found the gRPC port not accepting.
  bool grpc_accepting_ ABSL_GUARDED_BY(mu_) = true;
  // The self check's call in flight, which Shutdown cancels.
  ::grpc::ClientContext* self_check_call_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace bridge

#endif  // BRIDGE_APP_APP_H_
