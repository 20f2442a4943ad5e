// The server end to end on a Redis Cluster: a real 3-master/3-replica cluster, the real App
// (configured as main configures it from --redis=redis+cluster://... and
// --sharded_channels) with its gRPC server on port 0, and real gRPC clients.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bridge/app/app.h"
#include "bridge/redis/cluster_slot.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/integration/grpc_client.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/redis_server.h"

namespace bridge::testing {
namespace {

TEST(ClusterBridgeTest, ShardedAndClassicChannelsReachGrpcStreams) {
  RedisCluster cluster;
  AppOptions options;
  options.redis.url = cluster.url();
  options.redis.sharded_channels = {"orders.*"};
  options.grpc_addr = "127.0.0.1:0";
  options.shutdown_grace = absl::Seconds(2);
  App app(options);
  ASSERT_TRUE(app.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return app.hub().Healthy(); }));
  auto channel = Connect(app.grpc_port());
  auto stub = v1::Bridge::NewStub(channel);

  StreamReader reader(channel, Channels({"orders.7", "news"}));
  ASSERT_TRUE(reader.WaitSubscribed(2));
  const int owner = cluster.MasterOfSlot(redis::KeySlot("orders.7"));
  EXPECT_EQ(cluster.ShardNumSub(owner, "orders.7"), 1);

  // A publisher outside Bridge: SPUBLISH on the channel's master, PUBLISH on any node.
  ASSERT_TRUE(cluster.Command(owner, {"SPUBLISH", "orders.7", "outside"}).ok());
  ASSERT_TRUE(cluster.Command(cluster.Masters().front(), {"PUBLISH", "news", "classic"}).ok());
  // Bridge's own Publish, routed by slot.
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::PublishRequest req;
  req.set_channel("orders.7");
  req.set_payload("inside");
  v1::PublishResponse resp;
  ASSERT_TRUE(stub->Publish(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.receivers(), 1);

  ASSERT_TRUE(reader.WaitForEvents(5));
  std::vector<std::string> orders, news;
  for (const auto& e : reader.events()) {
    if (!e.has_message()) continue;
    (e.message().channel() == "orders.7" ? orders : news).push_back(e.message().payload());
  }
  EXPECT_EQ(orders, (std::vector<std::string>{"outside", "inside"}));
  EXPECT_EQ(news, (std::vector<std::string>{"classic"}));
  app.Shutdown();
}

using ::grpc::health::v1::HealthCheckResponse;

// The gRPC health of the server as a whole; UNKNOWN when the check gets no answer.
HealthCheckResponse::ServingStatus GrpcHealth(const std::shared_ptr<::grpc::Channel>& channel) {
  auto stub = ::grpc::health::v1::Health::NewStub(channel);
  ::grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  ::grpc::health::v1::HealthCheckRequest request;
  HealthCheckResponse response;
  if (!stub->Check(&context, request, &response).ok()) return HealthCheckResponse::UNKNOWN;
  return response.status();
}

// The status line of GET /healthz on 127.0.0.1:`port`, read to the close; empty on failure.
std::string Healthz(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out.substr(0, out.find("\r\n"));
}

// A master frozen (SIGSTOP) under the real App: its shard's delivery probe is lost, and
// gRPC health and /healthz say NOT_SERVING together, then SERVING together once the
// cluster has settled (the master resumed, or its replica promoted).
TEST(ClusterBridgeTest, AFrozenMasterMakesGrpcHealthAndHealthzNotServing) {
  RedisCluster cluster;
  AppOptions options;
  options.redis.url = cluster.url();
  options.redis.sharded_channels = {"orders.*"};
  options.redis.connect_timeout = absl::Seconds(1);
  options.redis.probe_interval = absl::Milliseconds(200);
  options.redis.probe_timeout = absl::Seconds(1);
  options.grpc_addr = "127.0.0.1:0";
  options.ws.address = "127.0.0.1:0";
  options.shutdown_grace = absl::Seconds(2);
  App app(options);
  ASSERT_TRUE(app.Start().ok());
  auto channel = Connect(app.grpc_port());
  StreamReader reader(channel, Channels({"orders.7"}));
  ASSERT_TRUE(reader.WaitSubscribed(1));
  ASSERT_TRUE(WaitFor([&] {
    return GrpcHealth(channel) == HealthCheckResponse::SERVING &&
           Healthz(app.ws_port()).find(" 200 ") != std::string::npos &&
           app.upstream_stats().probes_sent >= 2;
  }));
  const int owner = cluster.MasterOfSlot(redis::KeySlot("orders.7"));

  cluster.Pause(owner);
  const absl::Time frozen = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return GrpcHealth(channel) == HealthCheckResponse::NOT_SERVING; },
                      absl::Seconds(4)));
  const absl::Duration to_not_serving = absl::Now() - frozen;
  EXPECT_NE(Healthz(app.ws_port()).find(" 503 "), std::string::npos);
  EXPECT_GE(app.upstream_stats().probes_lost, 1u);
  EXPECT_NE(app.MetricsText().find("\nbridge_healthy 0\n"), std::string::npos);

  cluster.Resume(owner);
  ASSERT_TRUE(cluster.WaitForHealthy());
  ASSERT_TRUE(WaitFor(
      [&] {
        return GrpcHealth(channel) == HealthCheckResponse::SERVING &&
               Healthz(app.ws_port()).find(" 200 ") != std::string::npos;
      },
      absl::Seconds(30)));
  std::printf("figures: App on a cluster, SIGSTOP of a master -> gRPC NOT_SERVING in %s\n",
              absl::FormatDuration(to_not_serving).c_str());
  app.Shutdown();
}

TEST(ClusterBridgeTest, AServerThatIsNoClusterIsRefusedAtStart) {
  RedisServer single;
  AppOptions options;
  options.redis.url = absl::StrCat("redis+cluster://127.0.0.1:", single.port());
  options.redis.sharded_channels = {"orders.*"};
  options.grpc_addr = "127.0.0.1:0";
  App app(options);
  const absl::Status started = app.Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kFailedPrecondition) << started;
  app.Shutdown();
}

// Durable channels on a cluster, sharded and classic: Bridge's pub/sub connections are
// killed on every master while messages are published, and every subscriber still gets
// each message once, in offset order, with no gap; then a client resumes from an offset.
TEST(ClusterBridgeTest, DurableChannelsRecoverAndResumeOnACluster) {
  RedisCluster cluster;
  AppOptions options;
  options.redis.url = cluster.url();
  options.redis.sharded_channels = {"orders.*"};
  options.grpc_addr = "127.0.0.1:0";
  options.shutdown_grace = absl::Seconds(2);
  options.hub.durable = [](std::string_view) { return hub::HistoryPolicy{10000, absl::Hours(1)}; };
  App app(options);
  ASSERT_TRUE(app.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return app.hub().Healthy(); }));
  auto channel = Connect(app.grpc_port());
  auto stub = v1::Bridge::NewStub(channel);
  const std::vector<std::string> names = {"orders.7", "news.1"};
  StreamReader reader(channel, Channels(names));
  ASSERT_TRUE(reader.WaitSubscribed(2));
  std::map<std::string, std::string> epochs;
  auto publish = [&](int i) {
    for (const auto& name : names) {
      ::grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::PublishRequest req;
      req.set_channel(name);
      req.set_payload(std::to_string(i));
      v1::PublishResponse resp;
      ASSERT_TRUE(stub->Publish(&ctx, req, &resp).ok());
      ASSERT_EQ(resp.offset(), static_cast<uint64_t>(i));
      epochs[name] = resp.epoch();
    }
  };
  for (int i = 1; i <= 50; ++i) publish(i);
  for (int port : cluster.Masters()) {
    ASSERT_TRUE(cluster.Command(port, {"CLIENT", "KILL", "TYPE", "pubsub"}).ok());
  }
  for (int i = 51; i <= 100; ++i) publish(i);
  auto count = [](StreamReader& r) {
    size_t n = 0;
    for (const auto& e : r.events()) n += e.has_message() ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return count(reader) >= 200; }, absl::Seconds(30))) << count(reader);
  std::map<std::string, std::vector<uint64_t>> offsets;
  for (const auto& e : reader.events()) {
    EXPECT_FALSE(e.has_gap()) << e.DebugString();
    if (e.has_message()) offsets[e.message().channel()].push_back(e.message().offset());
  }
  for (const auto& name : names) {
    ASSERT_EQ(offsets[name].size(), 100u) << name;
    for (size_t i = 0; i < 100; ++i) ASSERT_EQ(offsets[name][i], i + 1) << name;
  }
  v1::SubscribeRequest resume;
  for (const auto& name : names) {
    v1::StreamPosition& p = (*resume.mutable_resume())[name];
    p.set_offset(90);
    p.set_epoch(epochs[name]);
  }
  StreamReader resumed(channel, resume);
  ASSERT_TRUE(WaitFor([&] { return count(resumed) >= 20; }));
  std::map<std::string, std::vector<uint64_t>> again;
  for (const auto& e : resumed.events()) {
    EXPECT_FALSE(e.has_gap()) << e.DebugString();
    if (e.has_message()) again[e.message().channel()].push_back(e.message().offset());
  }
  for (const auto& name : names) {
    ASSERT_EQ(again[name].size(), 10u) << name;
    EXPECT_EQ(again[name].front(), 91u);
    EXPECT_EQ(again[name].back(), 100u);
  }
  app.Shutdown();
}

}  // namespace
}  // namespace bridge::testing
