#include "bridge/app/app.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "bridge/app/metrics.h"
#include "bridge/common/grpc_log.h"
#include "bridge/common/log.h"
#include "bridge/common/protobuf_log.h"

namespace bridge {
namespace {

// The health service names: "" is the server as a whole.
constexpr const char* kHealthNames[] = {"", "bridge.v1.Bridge"};

int Millis(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

// Takes the reflection plugin out of one builder. Registering the plugin is process-wide
// (InitProtoReflectionServerBuilderPlugin), so a server without reflection removes it
// from its own builder's plugins instead.
class WithoutReflection : public ::grpc::ServerBuilderOption {
 public:
  void UpdateArguments(::grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<::grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const std::unique_ptr<::grpc::ServerBuilderPlugin>& plugin) {
      return dynamic_cast<::grpc::reflection::ProtoServerReflectionPlugin*>(plugin.get()) !=
             nullptr;
    });
  }
};

}  // namespace

App::App(AppOptions options)
    : options_(std::move(options)),
      access_(options_.access_file),
      redis_work_(boost::asio::make_work_guard(redis_io_)) {}

App::~App() { Shutdown(); }

absl::Status App::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("already started");
    started_ = true;
  }
  if (absl::Status st = access_.Load(); !st.ok()) return st;
  if (access_.enabled()) {
    BRIDGE_LOG(Info, "access: clients need a token of %s", options_.access_file);
  }
  absl::StatusOr<redis::RedisUrl> url = redis::RedisUrl::Parse(options_.redis.url);
  if (!url.ok()) return url.status();
  hub::Upstream* upstream = nullptr;
  if (url->is_cluster()) {
    // Asks the cluster first: whether it answers, and whether it knows sharded pub/sub.
    absl::StatusOr<std::unique_ptr<redis::ClusterUpstream>> cluster =
        redis::ClusterUpstream::Create(options_.redis, redis_io_);
    if (!cluster.ok()) return cluster.status();
    cluster_upstream_ = *std::move(cluster);
    upstream = cluster_upstream_.get();
  } else {
    absl::StatusOr<std::unique_ptr<redis::RedisUpstream>> single =
        redis::RedisUpstream::Create(options_.redis, redis_io_);
    if (!single.ok()) return single.status();
    upstream_ = *std::move(single);
    upstream = upstream_.get();
  }
  // Running from the moment the upstream exists, so that Shutdown can stop it on every
  // path, a failed Start included: Stop waits for the strand, which only this runs.
  redis_thread_ = std::thread([this] { redis_io_.run(); });
  hub::HubOptions hub_options = options_.hub;
  hub_options.on_health_change = [this](bool healthy) { OnHealthChange(healthy); };
  hub_ = std::make_unique<hub::Hub>(hub_options, upstream);
  service_ =
      std::make_unique<grpc_frontend::BridgeService>(hub_.get(), options_.subscriber, access_);

  // Before gRPC's threads start, which may log.
  RouteProtobufLogs();
  RouteGrpcLogs();
  ::grpc::EnableDefaultHealthCheckService(true);
  ::grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  ::grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.grpc_addr, ::grpc::InsecureServerCredentials(), &grpc_port_);
  builder.RegisterService(service_.get());
  if (!options_.grpc_reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(options_.grpc_keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             Millis(options_.grpc_keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Clients may keep their own streams alive with pings every 10 s or more.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  // A Publish larger than the payload limit gets RESOURCE_EXHAUSTED from the hub with a
  // clear message; far larger ones are stopped by gRPC before they are read.
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.hub.max_payload_bytes + 64 * 1024));
  // Two filters of gRPC's server stack that Bridge has no use for, each with state in every
  // call's arena (an idle stream is mostly that state: docs/BENCHMARKS.md). Bridge never
  // compresses what it sends (decompression of what clients send is another filter, kept),
  // and its clients' deadlines end their calls from their side, with a RST_STREAM that gRPC
  // reports as OnCancel; a client gone without one is found by keepalive.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_PER_MESSAGE_COMPRESSION, 0);
  builder.AddChannelArgument(GRPC_ARG_ENABLE_DEADLINE_CHECKS, 0);
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(
        absl::StrFormat("cannot listen for gRPC on %s", options_.grpc_addr));
  }
  {
    absl::MutexLock lock(&mu_);
    PublishServingStatus();
  }
  if (options_.grpc_self_check_interval > absl::ZeroDuration()) {
    self_check_thread_ = std::thread([this] { SelfCheckLoop(); });
  }
  if (!options_.ws.address.empty()) {
    ws::WsOptions ws_options = options_.ws;
    ws_options.subscriber = options_.subscriber;
    ws_options.metrics = [this] { return MetricsText(); };
    ws_options.health_problem = [this] { return HealthProblem(); };
    ws_server_ = std::make_unique<ws::WsServer>(ws_options, hub_.get(), access_);
    if (absl::Status st = ws_server_->Start(); !st.ok()) return st;
  }
  if (upstream_ != nullptr) upstream_->Start();
  if (cluster_upstream_ != nullptr) cluster_upstream_->Start();
  BRIDGE_LOG(Info, "gRPC listening on %s (port %d)", options_.grpc_addr, grpc_port_);
  return absl::OkStatus();
}

redis::RedisUpstreamStats App::upstream_stats() const {
  if (cluster_upstream_ != nullptr) return cluster_upstream_->Stats();
  return upstream_ != nullptr ? upstream_->Stats() : redis::RedisUpstreamStats{};
}

void App::StopUpstream() {
  if (upstream_ != nullptr) upstream_->Stop();
  if (cluster_upstream_ != nullptr) cluster_upstream_->Stop();
}

std::string App::MetricsText() const {
  MetricsSnapshot m;
  m.healthy = hub_->Healthy();
  {
    absl::MutexLock lock(&mu_);
    m.grpc_accepting = grpc_accepting_;
  }
  m.hub = hub_->Stats();
  m.redis = upstream_stats();
  m.grpc_streams = service_->open_streams();
  m.websockets = ws_server_ == nullptr ? 0 : ws_server_->session_count();
  if (ws_server_ != nullptr) m.http_connections = ws_server_->connection_stats();
  return PrometheusText(m);
}

std::string App::HealthProblem() const {
  if (!hub_->Healthy()) return "redis unavailable";
  absl::MutexLock lock(&mu_);
  if (!grpc_accepting_) return "the gRPC port stopped accepting connections";
  return {};
}

void App::OnHealthChange(bool healthy) {
  absl::MutexLock lock(&mu_);
  healthy_ = healthy;
  if (grpc_server_ == nullptr || stopped_) return;
  PublishServingStatus();
}

void App::PublishServingStatus() {
  // Clients on connections already open still hear NOT_SERVING when new ones are not
  // accepted.
  for (const char* name : kHealthNames) {
    grpc_server_->GetHealthCheckService()->SetServingStatus(name, healthy_ && grpc_accepting_);
  }
}

bool App::GrpcAnswersNewConnection() {
  ::grpc::ChannelArguments args;
  // A connection of its own, not one shared with an earlier check.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  ::grpc::GenericStub stub(::grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", grpc_port_),
                                                       ::grpc::InsecureChannelCredentials(), args));
  ::grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  context.set_wait_for_ready(true);
  // An empty HealthCheckRequest (the server as a whole): one empty slice, as a default
  // ByteBuffer is no message at all.
  const ::grpc::Slice empty;
  const ::grpc::ByteBuffer request(&empty, 1);
  ::grpc::ByteBuffer response;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return true;
    self_check_call_ = &context;
  }
  absl::Notification done;
  ::grpc::Status status;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", ::grpc::StubOptions(), &request,
                 &response, [&](::grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  {
    absl::MutexLock lock(&mu_);
    self_check_call_ = nullptr;
  }
  // Any answer, NOT_SERVING included, means the connection was accepted.
  return status.error_code() != ::grpc::StatusCode::DEADLINE_EXCEEDED &&
         status.error_code() != ::grpc::StatusCode::UNAVAILABLE;
}

void App::SelfCheckLoop() {
  while (!stop_self_check_.WaitForNotificationWithTimeout(options_.grpc_self_check_interval)) {
    const bool accepting = GrpcAnswersNewConnection();
    absl::MutexLock lock(&mu_);
    if (stopped_ || accepting == grpc_accepting_) continue;
    grpc_accepting_ = accepting;
    if (accepting) {
      BRIDGE_LOG(Info, "gRPC: port %d accepts connections again", grpc_port_);
    } else {
      BRIDGE_LOG(Error,
                 "gRPC: a new connection to port %d got no answer within 5 s: the listener may "
                 "have stopped accepting (out of descriptors?); health says NOT_SERVING, "
                 "restart Bridge",
                 grpc_port_);
    }
    PublishServingStatus();
  }
}

void App::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopped_) return;
    stopped_ = true;
    if (grpc_server_ != nullptr) grpc_server_->GetHealthCheckService()->Shutdown();
    // Its callback takes no lock.
    if (self_check_call_ != nullptr) self_check_call_->TryCancel();
  }
  stop_self_check_.Notify();
  if (self_check_thread_.joinable()) self_check_thread_.join();
  const absl::Duration grace = options_.shutdown_grace;
  BRIDGE_LOG(Info, "shutting down (grace %s)", absl::FormatDuration(grace));
  const absl::Time deadline = absl::Now() + grace;
  // WebSockets first: browsers hear 1001 (going away) rather than a hub closure. They get
  // half the grace, so that close handshakes that never finish leave gRPC its own half.
  if (ws_server_ != nullptr) ws_server_->Shutdown(grace / 2);
  // Streams end with UNAVAILABLE so clients reconnect elsewhere; new ones are refused.
  if (hub_ != nullptr) hub_->Shutdown();
  if (grpc_server_ != nullptr) {
    // What the WebSockets left of the grace, and never less than half of it.
    const absl::Time grpc_deadline = std::max(deadline, absl::Now() + grace / 2);
    // Shutdown returns only once every call has finished, Publish calls included, and the
    // upstream answers a publish when Redis does or at its own publish timeout. If calls
    // are still open at the deadline, where gRPC cancels them, the upstream stops too: it
    // answers the publishes it holds with UNAVAILABLE, and the server can finish. Redis
    // is thus closed no earlier than the gRPC drain ends.
    absl::Notification drained;
    std::thread stop_upstream_at_deadline([&] {
      if (drained.WaitForNotificationWithDeadline(grpc_deadline)) return;
      StopUpstream();
    });
    grpc_server_->Shutdown(absl::ToChronoTime(grpc_deadline));
    drained.Notify();
    stop_upstream_at_deadline.join();
    grpc_server_->Wait();
  }
  StopUpstream();
  redis_work_.reset();
  redis_io_.stop();
  if (redis_thread_.joinable()) redis_thread_.join();
  BRIDGE_LOG(Info, "shut down");
}

}  // namespace bridge
