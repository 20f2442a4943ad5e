// Durable channels end to end: a real redis-server, the real App (two of them where a
// client moves between Bridges), real gRPC and WebSocket clients.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bridge/app/app.h"
#include "bridge/app/history_rules.h"
#include "tests/integration/grpc_client.h"
#include "tests/support/redis_server.h"
#include "tests/ws/ws_test_client.h"

namespace bridge::testing {
namespace {

using ::bridge::ws::testing::WsTestClient;

class DurableBridgeTest : public ::testing::Test {
 protected:
  void SetUp() override { redis_ = std::make_unique<RedisServer>(); }

  std::unique_ptr<App> StartApp(const std::string& history = "d.*=100000/1h,short.*=50/1h") {
    redis_->Start();
    AppOptions options;
    options.redis.url = redis_->url();
    options.redis.probe_interval = absl::Milliseconds(200);
    options.redis.backoff_max = absl::Milliseconds(200);
    options.grpc_addr = "127.0.0.1:0";
    options.ws.address = "127.0.0.1:0";
    options.ws.allow_publish = true;
    options.shutdown_grace = absl::Seconds(2);
    absl::StatusOr<HistoryRules> rules = HistoryRules::Parse(history);
    EXPECT_TRUE(rules.ok()) << rules.status();
    options.hub.durable = [rules = *rules](std::string_view c) { return rules.For(c); };
    auto app = std::make_unique<App>(options);
    const absl::Status st = app->Start();
    EXPECT_TRUE(st.ok()) << st;
    EXPECT_TRUE(WaitFor([&] { return app->hub().Healthy(); }));
    return app;
  }

  static v1::PublishResponse Publish(v1::Bridge::Stub& stub, const std::string& channel,
                                     const std::string& payload) {
    ::grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::PublishRequest req;
    req.set_channel(channel);
    req.set_payload(payload);
    v1::PublishResponse resp;
    const ::grpc::Status st = stub.Publish(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  static std::unique_ptr<v1::Bridge::Stub> Stub(const App& app) {
    return v1::Bridge::NewStub(Connect(app.grpc_port()));
  }

  static v1::SubscribeRequest Resume(const std::string& channel, uint64_t offset,
                                     const std::string& epoch) {
    v1::SubscribeRequest r;
    v1::StreamPosition& p = (*r.mutable_resume())[channel];
    p.set_offset(offset);
    p.set_epoch(epoch);
    return r;
  }

  // The messages among `events`; fails on any gap.
  static std::vector<v1::Message> MessagesWithoutGaps(const std::vector<v1::Event>& events) {
    std::vector<v1::Message> out;
    for (const auto& e : events) {
      EXPECT_FALSE(e.has_gap()) << e.DebugString();
      if (e.has_message()) out.push_back(e.message());
    }
    return out;
  }

  static size_t CountMessages(StreamReader& reader) {
    size_t n = 0;
    for (const auto& e : reader.events()) n += e.has_message() ? 1 : 0;
    return n;
  }

  std::unique_ptr<RedisServer> redis_;
};

TEST_F(DurableBridgeTest, KillingTheSubscriberConnectionTenTimesLosesAndRepeatsNothing) {
  auto app = StartApp();
  auto stub = Stub(*app);
  auto channel = Connect(app->grpc_port());
  std::vector<std::unique_ptr<StreamReader>> readers;
  for (Method m : {Method::kSubscribe, Method::kSubscribeBatched, Method::kSubscribe}) {
    readers.push_back(std::make_unique<StreamReader>(channel, Channels({"d.kill"}), "", m));
    ASSERT_TRUE(readers.back()->WaitSubscribed());
  }
  std::atomic<bool> stop{false};
  std::atomic<int> published{0};
  std::thread publisher([&] {
    auto own = Stub(*app);
    while (!stop.load()) {
      const int n = published.load() + 1;
      ::grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::PublishRequest req;
      req.set_channel("d.kill");
      req.set_payload(std::to_string(n));
      v1::PublishResponse resp;
      // Publishing goes on through the kills (its connection is not a pub/sub one).
      if (own->Publish(&ctx, req, &resp).ok()) published.store(n);
    }
  });
  for (int kill = 0; kill < 10; ++kill) {
    // Some messages flow, then Bridge's subscriber connection is killed.
    const size_t seen = CountMessages(*readers[0]);
    ASSERT_TRUE(WaitFor([&] { return CountMessages(*readers[0]) >= seen + 20; }));
    ASSERT_TRUE(redis_->Command({"CLIENT", "KILL", "TYPE", "pubsub"}).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return CountMessages(*readers[0]) >= 20; }));
  stop.store(true);
  publisher.join();
  const int total = published.load();
  ASSERT_GT(total, 200);
  const std::string metrics = app->MetricsText();
  EXPECT_EQ(metrics.find("bridge_history_read_messages_total{for=\"recovery\"} 0\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("bridge_history_lost_total 0\n"), std::string::npos) << metrics;
  for (auto& reader : readers) {
    ASSERT_TRUE(WaitFor([&] { return CountMessages(*reader) >= static_cast<size_t>(total); },
                        absl::Seconds(30)))
        << CountMessages(*reader) << " of " << total;
    const std::vector<v1::Message> got = MessagesWithoutGaps(reader->events());
    ASSERT_EQ(got.size(), static_cast<size_t>(total));
    for (int i = 0; i < total; ++i) {
      ASSERT_EQ(got[i].offset(), static_cast<uint64_t>(i + 1));
      ASSERT_EQ(got[i].payload(), std::to_string(i + 1));
    }
  }
}

TEST_F(DurableBridgeTest, AClientResumesOnAnotherBridgeWithExactlyWhatItMissed) {
  auto first = StartApp();
  auto second = StartApp();
  auto stub = Stub(*first);
  std::string epoch;
  {
    StreamReader reader(Connect(first->grpc_port()), Channels({"d.move"}));
    ASSERT_TRUE(reader.WaitSubscribed());
    for (int i = 1; i <= 100; ++i) epoch = Publish(*stub, "d.move", std::to_string(i)).epoch();
    ASSERT_TRUE(reader.WaitForEvents(101));
    const std::vector<v1::Message> got = MessagesWithoutGaps(reader.events());
    ASSERT_EQ(got.back().offset(), 100u);
    ASSERT_EQ(got.back().epoch(), epoch);
  }
  // Gone for 500 messages; then it resumes on the second Bridge while 100 more are
  // published.
  for (int i = 101; i <= 600; ++i) Publish(*stub, "d.move", std::to_string(i));
  std::thread more([&] {
    auto own = Stub(*first);
    for (int i = 601; i <= 700; ++i) Publish(*own, "d.move", std::to_string(i));
  });
  StreamReader resumed(Connect(second->grpc_port()), Resume("d.move", 100, epoch), "",
                       Method::kSubscribeBatched);
  more.join();
  ASSERT_TRUE(WaitFor([&] { return CountMessages(resumed) >= 600; }, absl::Seconds(30)))
      << CountMessages(resumed);
  const std::vector<v1::Event> events = resumed.events();
  ASSERT_TRUE(events.front().has_subscribed());
  const std::vector<v1::Message> got = MessagesWithoutGaps(events);
  ASSERT_EQ(got.size(), 600u);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].offset(), 101 + i);
    ASSERT_EQ(got[i].payload(), std::to_string(101 + i));
  }
  // The first 500 at least came from the history.
  EXPECT_TRUE(got[0].recovered());
  EXPECT_TRUE(got[499].recovered());
  EXPECT_NE(second->MetricsText().find("bridge_resumes_total 1\n"), std::string::npos);
}

TEST_F(DurableBridgeTest, AResumeOlderThanTheHistoryGetsAHistoryLostGap) {
  auto app = StartApp();
  auto stub = Stub(*app);
  std::string epoch;
  for (int i = 1; i <= 300; ++i) epoch = Publish(*stub, "short.a", std::to_string(i)).epoch();
  StreamReader reader(Connect(app->grpc_port()), Resume("short.a", 10, epoch));
  ASSERT_TRUE(reader.WaitForEvents(2));
  // Kept: about the last 50 (Redis trims streams in whole nodes).
  ASSERT_TRUE(WaitFor([&] {
    auto events = reader.events();
    return !events.empty() && events.back().has_message() &&
           events.back().message().offset() == 300;
  }));
  const std::vector<v1::Event> events = reader.events();
  ASSERT_TRUE(events[0].has_subscribed());
  ASSERT_TRUE(events[1].has_gap()) << events[1].DebugString();
  EXPECT_EQ(events[1].gap().reason(), "history_lost");
  ASSERT_TRUE(events[2].has_message());
  const uint64_t first = events[2].message().offset();
  EXPECT_GT(first, 11u);
  EXPECT_LE(first, 251u);
  EXPECT_EQ(events[1].gap().dropped(), first - 11);
  EXPECT_EQ(events.size(), 2 + (300 - first + 1));
}

TEST_F(DurableBridgeTest, ARedisRestartWithoutPersistenceStartsANewEpoch) {
  auto app = StartApp();
  auto stub = Stub(*app);
  StreamReader live(Connect(app->grpc_port()), Channels({"d.e"}));
  ASSERT_TRUE(live.WaitSubscribed());
  std::string old_epoch;
  for (int i = 1; i <= 5; ++i) old_epoch = Publish(*stub, "d.e", std::to_string(i)).epoch();
  ASSERT_TRUE(live.WaitForEvents(6));
  redis_->Restart();  // no persistence: the history and its epoch are gone
  ASSERT_TRUE(WaitFor([&] { return app->hub().Healthy(); }, absl::Seconds(20)));
  const v1::PublishResponse fresh = Publish(*stub, "d.e", "new1");
  EXPECT_NE(fresh.epoch(), old_epoch);
  EXPECT_EQ(fresh.offset(), 1u);
  Publish(*stub, "d.e", "new2");
  // The live subscriber: a history_lost gap (the history of its epoch is gone), then the
  // new epoch's messages, each once.
  ASSERT_TRUE(WaitFor([&] {
    auto e = live.events();
    return e.back().has_message() && e.back().message().payload() == "new2";
  }));
  std::vector<std::string> after;
  for (const auto& e : live.events()) {
    if (e.has_gap()) after.push_back(absl::StrCat("gap:", e.gap().reason()));
    if (e.has_message() && e.message().epoch() == fresh.epoch()) {
      after.push_back(e.message().payload());
    }
  }
  EXPECT_EQ(after, (std::vector<std::string>{"gap:history_lost", "new1", "new2"}));
  // A client resuming in the old epoch: the same.
  StreamReader resumed(Connect(app->grpc_port()), Resume("d.e", 5, old_epoch));
  ASSERT_TRUE(resumed.WaitForEvents(4));
  const auto events = resumed.events();
  EXPECT_EQ(events[1].gap().reason(), "history_lost");
  EXPECT_EQ(events[1].gap().dropped(), 0u);
  EXPECT_EQ(events[2].message().payload(), "new1");
  EXPECT_EQ(events[3].message().payload(), "new2");
}

TEST_F(DurableBridgeTest, WithAppendOnlyFilesAResumeRecoversEverythingAfterARestart) {
  redis_ = std::make_unique<RedisServer>(
      std::vector<std::string>{"appendonly yes", "appendfsync always"});
  auto app = StartApp();
  auto stub = Stub(*app);
  StreamReader live(Connect(app->grpc_port()), Channels({"d.aof"}));
  ASSERT_TRUE(live.WaitSubscribed());
  std::string epoch;
  for (int i = 1; i <= 20; ++i) epoch = Publish(*stub, "d.aof", std::to_string(i)).epoch();
  ASSERT_TRUE(live.WaitForEvents(21));
  redis_->Restart();
  ASSERT_TRUE(WaitFor([&] { return app->hub().Healthy(); }, absl::Seconds(20)));
  for (int i = 21; i <= 25; ++i) {
    const v1::PublishResponse r = Publish(*stub, "d.aof", std::to_string(i));
    EXPECT_EQ(r.epoch(), epoch);
    EXPECT_EQ(r.offset(), static_cast<uint64_t>(i));
  }
  StreamReader resumed(Connect(app->grpc_port()), Resume("d.aof", 5, epoch));
  ASSERT_TRUE(WaitFor([&] { return CountMessages(resumed) >= 20; }));
  const std::vector<v1::Message> got = MessagesWithoutGaps(resumed.events());
  ASSERT_EQ(got.size(), 20u);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i].offset(), 6 + i);
  // The live subscriber saw no gap either: 1..25, each once.
  ASSERT_TRUE(WaitFor([&] { return CountMessages(live) >= 25; }));
  const std::vector<v1::Message> all = MessagesWithoutGaps(live.events());
  ASSERT_EQ(all.size(), 25u);
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i].offset(), 1 + i);
}

// Another service publishes durably straight to Redis, as docs/DURABLE.md shows; Bridge's
// subscribers get the message with its offset, and it is in the history.
TEST_F(DurableBridgeTest, AnotherServicePublishesWithFcall) {
  auto app = StartApp();
  auto stub = Stub(*app);
  StreamReader reader(Connect(app->grpc_port()), Channels({"d.fcall"}));
  ASSERT_TRUE(reader.WaitSubscribed());
  const std::string epoch = Publish(*stub, "d.fcall", "through bridge").epoch();
  absl::StatusOr<std::string> reply =
      redis_->Command({"FCALL", "bridge_publish", "2", "bridge:meta:{d.fcall}:d.fcall",
                       "bridge:stream:{d.fcall}:d.fcall", "d.fcall", "from redis-cli", "1000",
                       "86400000", "0", "600000"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(reader.WaitForEvents(3));
  const std::vector<v1::Message> got = MessagesWithoutGaps(reader.events());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].payload(), "from redis-cli");
  EXPECT_EQ(got[1].offset(), 2u);
  EXPECT_EQ(got[1].epoch(), epoch);
}

TEST_F(DurableBridgeTest, HistoryOverGrpcAndWebSocket) {
  auto app = StartApp();
  auto stub = Stub(*app);
  std::string epoch;
  for (int i = 1; i <= 10; ++i) epoch = Publish(*stub, "d.h", absl::StrCat("m", i)).epoch();
  {
    ::grpc::ClientContext ctx;
    v1::HistoryRequest req;
    req.set_channel("d.h");
    req.set_limit(3);
    v1::HistoryResponse resp;
    ASSERT_TRUE(stub->History(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.offset(), 10u);
    EXPECT_EQ(resp.epoch(), epoch);
    ASSERT_EQ(resp.messages_size(), 3);
    EXPECT_EQ(resp.messages(0).offset(), 8u);
    EXPECT_EQ(resp.messages(2).payload(), "m10");
  }
  {
    ::grpc::ClientContext ctx;
    v1::HistoryRequest req;
    req.set_channel("plain");
    v1::HistoryResponse resp;
    EXPECT_EQ(stub->History(&ctx, req, &resp).error_code(),
              ::grpc::StatusCode::FAILED_PRECONDITION);
  }
  auto ws = WsTestClient::Connect(app->ws_port());
  ASSERT_TRUE(ws.ok()) << ws.status();
  ASSERT_TRUE((*ws)
                  ->SendJson({{"op", "history"},
                              {"channel", "d.h"},
                              {"id", "q1"},
                              {"since", {{"offset", 7}, {"epoch", epoch}}}})
                  .ok());
  absl::StatusOr<nlohmann::json> history = (*ws)->ReadOp("history");
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ((*history)["id"], "q1");
  ASSERT_EQ((*history)["messages"].size(), 3u);
  EXPECT_EQ((*history)["messages"][0]["offset"], 8);
  EXPECT_EQ((*history)["messages"][0]["data"], "m8");
  EXPECT_EQ((*history)["history_lost"], false);
  ASSERT_TRUE((*ws)->SendJson({{"op", "history"}, {"channel", "plain"}}).ok());
  absl::StatusOr<nlohmann::json> refused = (*ws)->ReadOp("error");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ((*refused)["code"], "not_durable");
  EXPECT_EQ((*refused)["request"], "history");
}

TEST_F(DurableBridgeTest, AWebSocketResumesAndPublishesDurably) {
  auto app = StartApp();
  auto ws = WsTestClient::Connect(app->ws_port());
  ASSERT_TRUE(ws.ok());
  auto stub = Stub(*app);
  std::string epoch;
  for (int i = 1; i <= 5; ++i) epoch = Publish(*stub, "d.w", absl::StrCat("m", i)).epoch();
  ASSERT_TRUE((*ws)
                  ->SendJson({{"op", "subscribe"},
                              {"resume", {{"d.w", {{"offset", 2}, {"epoch", epoch}}}}}})
                  .ok());
  ASSERT_TRUE((*ws)->ReadOp("subscribed").ok());
  for (int offset = 3; offset <= 5; ++offset) {
    absl::StatusOr<nlohmann::json> m = (*ws)->ReadOp("message");
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ((*m)["offset"], offset);
    EXPECT_EQ((*m)["epoch"], epoch);
    EXPECT_EQ((*m)["recovered"], true);
  }
  ASSERT_TRUE((*ws)->SendJson({{"op", "publish"}, {"channel", "d.w"}, {"data", "m6"}}).ok());
  absl::StatusOr<nlohmann::json> published = (*ws)->ReadOp("published");
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ((*published)["offset"], 6);
  EXPECT_EQ((*published)["epoch"], epoch);
  absl::StatusOr<nlohmann::json> live = (*ws)->ReadOp("message");
  ASSERT_TRUE(live.ok());
  EXPECT_EQ((*live)["offset"], 6);
  EXPECT_EQ((*live)["data"], "m6");
  EXPECT_FALSE(live->contains("recovered"));
}

}  // namespace
}  // namespace bridge::testing
