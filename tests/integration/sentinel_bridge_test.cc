// The whole server on a real Sentinel setup: the App finds the master through the
// sentinels, its gRPC subscribers receive through it, and when the master is killed they
// get one redis_reconnect gap and messages again, health going NOT_SERVING and back.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/app/app.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/integration/grpc_client.h"
#include "tests/support/redis_sentinel.h"
#include "tests/support/redis_server.h"

namespace bridge::testing {
namespace {

class SentinelBridgeTest : public ::testing::Test {
 protected:
  void StartApp() {
    AppOptions options;
    options.redis.url = setup_.url();
    options.redis.connect_timeout = absl::Seconds(2);
    options.redis.backoff_max = absl::Milliseconds(500);
    options.grpc_addr = "127.0.0.1:0";
    options.ws.address = "";
    options.shutdown_grace = absl::Seconds(2);
    app_ = std::make_unique<App>(options);
    ASSERT_TRUE(app_->Start().ok());
    ASSERT_TRUE(WaitFor([&] { return app_->hub().Healthy(); }));
    channel_ = Connect(app_->grpc_port());
    stub_ = v1::Bridge::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
  }
  void TearDown() override {
    if (app_ != nullptr) app_->Shutdown();
  }

  bool Serving() {
    ::grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    return health_->Check(&ctx, req, &resp).ok() &&
           resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  }

  ::grpc::Status Publish(const std::string& channel, const std::string& payload,
                         int64_t* receivers = nullptr) {
    ::grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::PublishRequest req;
    req.set_channel(channel);
    req.set_payload(payload);
    v1::PublishResponse resp;
    ::grpc::Status st = stub_->Publish(&ctx, req, &resp);
    if (receivers != nullptr) *receivers = resp.receivers();
    return st;
  }

  RedisSentinelSetup setup_;
  std::unique_ptr<App> app_;
  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<v1::Bridge::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

TEST_F(SentinelBridgeTest, SubscribersFollowTheMasterThroughAFailover) {
  StartApp();
  std::vector<std::unique_ptr<StreamReader>> readers;
  for (int i = 0; i < 5; ++i) {
    readers.push_back(std::make_unique<StreamReader>(channel_, Channels({"ticks"})));
  }
  for (auto& r : readers) ASSERT_TRUE(r->WaitSubscribed());
  EXPECT_EQ(setup_.node(0).NumSub("ticks"), 1);
  int64_t receivers = 0;
  ASSERT_TRUE(Publish("ticks", "before", &receivers).ok());
  EXPECT_EQ(receivers, 1);
  for (auto& r : readers) ASSERT_TRUE(r->WaitForEvents(2));
  EXPECT_TRUE(Serving());

  const absl::Time killed = absl::Now();
  setup_.node(0).Kill();
  ASSERT_TRUE(WaitFor([&] { return !app_->hub().Healthy(); }));
  EXPECT_FALSE(Serving());
  ASSERT_TRUE(WaitFor([&] { return app_->hub().Healthy(); }, absl::Seconds(30)));
  const absl::Duration unhealthy_for = absl::Now() - killed;
  EXPECT_TRUE(Serving());
  EXPECT_EQ(setup_.node(1).NumSub("ticks"), 1);

  // Published through Bridge, to the new master.
  ASSERT_TRUE(Publish("ticks", "after", &receivers).ok());
  EXPECT_EQ(receivers, 1);
  for (auto& r : readers) {
    // Subscribed, "before", one gap, "after".
    ASSERT_TRUE(r->WaitForEvents(4));
    const std::vector<v1::Event> events = r->events();
    ASSERT_EQ(events.size(), 4u);
    ASSERT_TRUE(events[2].has_gap()) << events[2].DebugString();
    EXPECT_EQ(events[2].gap().reason(), "redis_reconnect");
    EXPECT_EQ(events[2].gap().channel(), "ticks");
    EXPECT_EQ(events[3].message().payload(), "after");
  }
  const absl::Duration flowing = absl::Now() - killed;
  std::printf("kill -9 of the master: SERVING again after %s, messages delivered after %s\n",
              absl::FormatDuration(unhealthy_for).c_str(), absl::FormatDuration(flowing).c_str());
}

}  // namespace
}  // namespace bridge::testing
