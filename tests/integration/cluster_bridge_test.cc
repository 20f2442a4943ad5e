// The server end to end on a Redis Cluster: a real 3-master/3-replica cluster, the real App
// (configured as main configures it from --redis=redis+cluster://... and
// --sharded_channels) with its gRPC server on port 0, and real gRPC clients.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bridge/app/app.h"
#include "bridge/redis/cluster_slot.h"
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

}  // namespace
}  // namespace bridge::testing
