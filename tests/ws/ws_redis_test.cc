// The WebSocket front end inside the whole server (App): a real redis-server, the real
// Redis upstream, gRPC streams next to WebSockets on the same channels.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bridge/app/app.h"
#include "gtest/gtest.h"
#include "tests/integration/grpc_client.h"
#include "tests/support/redis_server.h"
#include "tests/ws/ws_test_client.h"

namespace bridge::ws {
namespace {

using ::bridge::testing::RedisServer;
using ::bridge::testing::WaitFor;
using testing::HttpGet;
using testing::WsTestClient;

class WsRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_.Start();
    AppOptions o;
    o.redis.url = redis_.url();
    o.grpc_addr = "127.0.0.1:0";
    o.ws.address = "127.0.0.1:0";
    o.ws.threads = 2;
    o.shutdown_grace = absl::Seconds(3);
    app_ = std::make_unique<App>(o);
    const absl::Status st = app_->Start();
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_GT(app_->ws_port(), 0);
    ASSERT_TRUE(WaitFor([&] { return app_->hub().Healthy(); }));
  }
  void TearDown() override { app_.reset(); }

  std::unique_ptr<WsTestClient> Client(const std::string& target = "/ws") {
    WsTestClient::Options o;
    o.target = target;
    auto c = WsTestClient::Connect(app_->ws_port(), o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  RedisServer redis_;
  std::unique_ptr<App> app_;
};

TEST_F(WsRedisTest, HealthzFollowsRedis) {
  auto r = HttpGet(app_->ws_port(), "/healthz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  redis_.Kill();
  ASSERT_TRUE(WaitFor([&] {
    auto h = HttpGet(app_->ws_port(), "/healthz");
    return h.ok() && h->status == 503;
  }));
  redis_.Start();
  ASSERT_TRUE(WaitFor([&] {
    auto h = HttpGet(app_->ws_port(), "/healthz");
    return h.ok() && h->status == 200;
  }));
}

// Bridge connects as a Redis user whose ACL allows the channels app:* only: a socket
// asking for another channel gets a forbidden error for it and keeps the rest.
TEST(WsRedisAclTest, ARefusedChannelIsAnErrorAndTheSocketStays) {
  // The delivery probe's channels allowed, as README advises: a refused probe would cost
  // the subscriber connection once, racing the refusal this test is about.
  RedisServer acl({"user app on >pw ~* resetchannels &app:* &__bridge_probe__:* +@all"});
  AppOptions o;
  o.redis.url = "redis://app:pw@127.0.0.1:" + std::to_string(acl.port());
  o.grpc_addr = "127.0.0.1:0";
  o.ws.address = "127.0.0.1:0";
  o.shutdown_grace = absl::Seconds(3);
  App app(o);
  ASSERT_TRUE(app.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return app.hub().Healthy(); }));
  auto c = WsTestClient::Connect(app.ws_port());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->SendJson({{"op", "subscribe"}, {"channels", {"app:a", "forbidden"}}}).ok());
  auto s = (*c)->ReadOp("subscribed");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)["channel"], "app:a");
  auto e = (*c)->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "forbidden");
  EXPECT_EQ((*e)["channel"], "forbidden");
  EXPECT_EQ((*e)["request"], "subscribe");
  // Asking again is answered from memory, and the socket still gets its channel.
  ASSERT_TRUE((*c)->SendJson({{"op", "subscribe"}, {"channels", {"forbidden"}}}).ok());
  e = (*c)->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "forbidden");
  ASSERT_TRUE(WaitFor([&] { return app.hub().Healthy(); }));
  ASSERT_TRUE(WaitFor([&] { return acl.NumSub("app:a") == 1; }));
  EXPECT_EQ(acl.Publish("app:a", "still here"), 1);
  auto m = (*c)->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data"], "still here");
  app.Shutdown();
}

TEST_F(WsRedisTest, SubscribeUnsubscribeAndPatterns) {
  auto c = Client("/ws?channel=url.chan");
  ASSERT_NE(c, nullptr);
  auto s = c->ReadOp("subscribed");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(redis_.NumSub("url.chan"), 1);
  ASSERT_TRUE(c->SendJson({{"op", "subscribe"}, {"patterns", {"news.*"}}}).ok());
  s = c->ReadOp("subscribed");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)["pattern"], "news.*");

  EXPECT_EQ(redis_.Publish("url.chan", "one"), 1);
  EXPECT_EQ(redis_.Publish("news.eu", "two"), 1);
  auto m = c->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data"], "one");
  m = c->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["channel"], "news.eu");
  EXPECT_EQ((*m)["pattern"], "news.*");

  ASSERT_TRUE(c->SendJson({{"op", "unsubscribe"}, {"channels", {"url.chan"}}}).ok());
  ASSERT_TRUE(c->ReadOp("unsubscribed").ok());
  ASSERT_TRUE(WaitFor([&] { return redis_.NumSub("url.chan") == 0; }));
  EXPECT_EQ(redis_.Publish("news.x", "three"), 1);
  m = c->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data"], "three");
}

// Invariant 1 across both front ends: one Redis subscription however many subscribers,
// and every one of them gets every message, in order.
TEST_F(WsRedisTest, TwoHundredSocketsAndFiftyStreamsShareOneSubscription) {
  constexpr int kSockets = 200;
  constexpr int kStreams = 50;
  constexpr int kMessages = 50;
  std::vector<std::unique_ptr<WsTestClient>> sockets;
  for (int i = 0; i < kSockets; ++i) {
    sockets.push_back(Client("/ws?channel=fan"));
    ASSERT_NE(sockets.back(), nullptr);
  }
  for (auto& s : sockets) ASSERT_TRUE(s->ReadOp("subscribed").ok());
  auto channel = bridge::testing::Connect(app_->grpc_port());
  std::vector<std::unique_ptr<bridge::testing::StreamReader>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<bridge::testing::StreamReader>(
        channel, bridge::testing::Channels({"fan"})));
  }
  for (auto& s : streams) ASSERT_TRUE(s->WaitSubscribed());
  EXPECT_EQ(redis_.NumSub("fan"), 1);

  for (int i = 1; i <= kMessages; ++i) {
    ASSERT_EQ(redis_.Publish("fan", absl::StrCat("m", i)), 1);
  }
  for (auto& s : sockets) {
    for (int i = 1; i <= kMessages; ++i) {
      auto m = s->Read();
      ASSERT_TRUE(m.ok()) << m.status();
      ASSERT_EQ((*m)["op"], "message");
      ASSERT_EQ((*m)["data"], absl::StrCat("m", i));
    }
  }
  for (auto& s : streams) {
    ASSERT_TRUE(s->WaitForEvents(1 + kMessages));
    const auto events = s->events();
    for (int i = 1; i <= kMessages; ++i) {
      ASSERT_TRUE(events[i].has_message());
      EXPECT_EQ(events[i].message().payload(), absl::StrCat("m", i));
    }
  }
  // Closing sockets and streams releases the subscription only with the last of them.
  sockets.resize(1);
  streams.clear();
  ASSERT_TRUE(WaitFor([&] { return app_->hub().Stats().subscribers == 1; }));
  EXPECT_EQ(redis_.NumSub("fan"), 1);
  sockets.clear();
  EXPECT_TRUE(WaitFor([&] { return redis_.NumSub("fan") == 0; }));
}

// GET /metrics: Prometheus' text, counting what just happened on both front ends.
TEST_F(WsRedisTest, MetricsCountSubscribersTopicsAndDeliveries) {
  auto a = Client("/ws?channel=metered");
  auto b = Client("/ws?channel=metered&pattern=meter*");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->ReadOp("subscribed").ok());
  ASSERT_TRUE(b->ReadOp("subscribed").ok());
  ASSERT_TRUE(b->ReadOp("subscribed").ok());
  auto channel = bridge::testing::Connect(app_->grpc_port());
  bridge::testing::StreamReader stream(channel, bridge::testing::Channels({"metered"}));
  ASSERT_TRUE(stream.WaitSubscribed());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(redis_.Publish("metered", "x"), 2);
  ASSERT_TRUE(stream.WaitForEvents(4));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a->ReadOp("message").ok());
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(b->ReadOp("message").ok());

  // The hub counts a message's deliveries once it has queued it for every subscriber,
  // so a reader may have it before the count does: the counters settle soon after.
  absl::StatusOr<testing::HttpReply> r;
  EXPECT_TRUE(WaitFor([&] {
    r = HttpGet(app_->ws_port(), "/metrics");
    return r.ok() && r->body.find("bridge_deliveries_total 12\n") != std::string::npos;
  }));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "text/plain; version=0.0.4; charset=utf-8");
  for (const char* line : {
           "bridge_healthy 1\n",
           "bridge_redis_connected{connection=\"subscriber\"} 1\n",
           "bridge_subscribers{frontend=\"grpc\"} 1\n",
           "bridge_subscribers{frontend=\"websocket\"} 2\n",
           "bridge_topics{kind=\"channel\"} 1\n",
           "bridge_topics{kind=\"pattern\"} 1\n",
           // 3 on the channel (to 3 subscribers), 3 through the pattern (to 1).
           "bridge_messages_total 6\n",
           "bridge_deliveries_total 12\n",
           "bridge_slow_consumer_dropped_messages_total 0\n",
           "# TYPE bridge_deliveries_total counter\n",
       }) {
    EXPECT_NE(r->body.find(line), std::string::npos) << line << " not in:\n" << r->body;
  }
}

TEST_F(WsRedisTest, RedisRestartGivesGapThenMessagesAgain) {
  auto c = Client("/ws?channel=phoenix");
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->ReadOp("subscribed").ok());
  redis_.Restart();
  auto gap = c->ReadOp("gap", absl::Seconds(20));
  ASSERT_TRUE(gap.ok()) << gap.status();
  EXPECT_EQ((*gap)["channel"], "phoenix");
  EXPECT_EQ((*gap)["reason"], "redis_reconnect");
  ASSERT_TRUE(WaitFor([&] { return redis_.NumSub("phoenix") == 1; }));
  ASSERT_EQ(redis_.Publish("phoenix", "risen"), 1);
  auto m = c->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data"], "risen");
}

TEST_F(WsRedisTest, AppShutdownClosesWithGoingAway) {
  auto c = Client("/ws?channel=bye");
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->ReadOp("subscribed").ok());
  std::thread stopper([&] { app_->Shutdown(); });
  auto code = c->ReadUntilClosed();
  stopper.join();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1001);
}

// With an access file, a socket needs a known token (in the URL for browsers, or a
// header), and each subscription and publish needs its grant.
TEST(WsAccessTest, TokensAndGrantsDecideWhatASocketMayDo) {
  RedisServer redis;
  redis.Start();
  const std::string path = absl::StrCat(::testing::TempDir(), "/ws-access-", getpid(), ".json");
  std::ofstream(path) << R"({"clients": [
    {"name": "ui", "token": "ui-token-0123456789", "subscribe": ["prices.*", "news.*"],
     "publish": ["chat"]}]})";
  AppOptions o;
  o.redis.url = redis.url();
  o.grpc_addr = "127.0.0.1:0";
  o.ws.address = "127.0.0.1:0";
  o.ws.allow_publish = true;
  o.access_file = path;
  o.shutdown_grace = absl::Seconds(3);
  App app(o);
  ASSERT_TRUE(app.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return app.hub().Healthy(); }));
  auto connect = [&](const std::string& target, const std::string& authorization = "") {
    WsTestClient::Options options;
    options.target = target;
    options.authorization = authorization;
    return WsTestClient::Connect(app.ws_port(), options);
  };

  // No token, an unknown one: 401. A channel outside the grant at connect time: 403.
  for (const char* target : {"/ws", "/ws?access_token=wrong-token-0123456789"}) {
    auto refused = connect(target);
    ASSERT_FALSE(refused.ok()) << target;
    EXPECT_EQ(refused.status().message(), "HTTP 401") << target;
  }
  auto wrong_header = connect("/ws", "Bearer wrong-token-0123456789");
  EXPECT_EQ(wrong_header.status().message(), "HTTP 401");
  auto outside = connect("/ws?access_token=ui-token-0123456789&channel=orders");
  EXPECT_EQ(outside.status().message(), "HTTP 403");

  // The token in the URL, with a channel of the grant.
  auto c = connect("/ws?channel=prices.eu&access_token=ui-token-0123456789");
  ASSERT_TRUE(c.ok()) << c.status();
  auto s = (*c)->ReadOp("subscribed");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)["channel"], "prices.eu");
  // A topic outside the grant is an error of its own; the rest of the op goes ahead, and
  // the socket stays.
  ASSERT_TRUE(
      (*c)->SendJson({{"op", "subscribe"}, {"channels", {"orders", "news.eu", "payroll"}}}).ok());
  for (const char* refused : {"orders", "payroll"}) {
    auto e = (*c)->Read();
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ((*e)["op"], "error");
    EXPECT_EQ((*e)["code"], "forbidden");
    EXPECT_EQ((*e)["channel"], refused);
    EXPECT_EQ((*e)["request"], "subscribe");
  }
  s = (*c)->ReadOp("subscribed");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)["channel"], "news.eu");
  // Resumed channels are checked the same way, each refusal told once, even for a channel
  // named in both lists; and reading a channel's history needs the right to subscribe.
  ASSERT_TRUE(
      (*c)->SendJson(
              {{"op", "subscribe"},
               {"channels", {"orders"}},
               {"resume", {{"orders", {{"offset", 1}}}, {"payroll", nlohmann::json::object()}}}})
          .ok());
  ASSERT_TRUE((*c)->SendJson({{"op", "history"}, {"channel", "payroll"}}).ok());
  std::vector<std::string> told;
  for (int i = 0; i < 3; ++i) {
    auto refusal = (*c)->ReadOp("error");
    ASSERT_TRUE(refusal.ok()) << refusal.status();
    EXPECT_EQ((*refusal)["code"], "forbidden");
    told.push_back(
        absl::StrCat((*refusal)["request"].get<std::string>(), ":", refusal->value("channel", "")));
  }
  std::sort(told.begin(), told.end());
  EXPECT_EQ(told, (std::vector<std::string>{"history:", "subscribe:orders", "subscribe:payroll"}));
  // A bad name still refuses the whole op, before any grant is looked at.
  ASSERT_TRUE((*c)->SendJson({{"op", "subscribe"}, {"channels", {"orders", ""}}}).ok());
  auto e = (*c)->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "bad_channel");
  ASSERT_TRUE((*c)->SendJson({{"op", "subscribe"}, {"patterns", {"n*"}}}).ok());
  e = (*c)->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "forbidden");
  EXPECT_EQ((*e)["pattern"], "n*");
  ASSERT_TRUE((*c)->SendJson({{"op", "publish"}, {"channel", "prices.eu"}, {"data", "x"}}).ok());
  e = (*c)->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "publish_forbidden");
  EXPECT_EQ((*e)["request"], "publish");
  ASSERT_TRUE((*c)->Barrier().ok());
  EXPECT_EQ(redis.NumSub("news.eu"), 1);
  EXPECT_EQ(redis.NumSub("orders"), 0);
  EXPECT_EQ(redis.NumSub("payroll"), 0);

  // The token in a header; a pattern of the grant; a publish of the grant reaches it.
  auto h = connect("/ws?pattern=news.*", "Bearer ui-token-0123456789");
  ASSERT_TRUE(h.ok()) << h.status();
  s = (*h)->ReadOp("subscribed");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)["pattern"], "news.*");
  ASSERT_TRUE((*h)->SendJson({{"op", "subscribe"}, {"channels", {"chat"}}}).ok());
  e = (*h)->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "forbidden") << "publishing to a channel does not allow reading it";
  EXPECT_EQ(redis.Publish("prices.eu", "1.25"), 1);
  auto m = (*c)->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data"], "1.25");
  ASSERT_TRUE((*h)->SendJson({{"op", "publish"}, {"channel", "chat"}, {"data", "hi"}}).ok());
  auto p = (*h)->ReadOp("published");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)["channel"], "chat");
  app.Shutdown();
  std::remove(path.c_str());
}

}  // namespace
}  // namespace bridge::ws
