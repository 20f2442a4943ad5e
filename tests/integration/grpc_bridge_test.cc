// The gRPC bridge end to end: a real redis-server on a free port, the real App with its
// gRPC server on port 0, and real gRPC clients.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "bridge/app/app.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/integration/grpc_client.h"
#include "tests/support/redis_server.h"

namespace bridge::testing {
namespace {

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class GrpcBridgeTest : public ::testing::Test {
 protected:
  // Against redis_, unless `redis_url` names another server.
  void StartApp(AppOptions options = {}, const std::string& redis_url = "") {
    options.redis.url = redis_url.empty() ? redis_.url() : redis_url;
    options.grpc_addr = "127.0.0.1:0";
    options.shutdown_grace = absl::Seconds(2);
    app_ = std::make_unique<App>(options);
    ASSERT_TRUE(app_->Start().ok());
    ASSERT_TRUE(WaitFor([&] { return app_->hub().Healthy(); }));
    channel_ = Connect(app_->grpc_port());
    stub_ = v1::Bridge::NewStub(channel_);
  }
  void TearDown() override {
    if (app_ != nullptr) app_->Shutdown();
  }

  ::grpc::Status Publish(const std::string& channel, const std::string& payload,
                         int64_t* receivers = nullptr, const std::string& token = "") {
    ::grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::PublishRequest req;
    req.set_channel(channel);
    req.set_payload(payload);
    v1::PublishResponse resp;
    ::grpc::Status st = stub_->Publish(&ctx, req, &resp);
    if (receivers != nullptr) *receivers = resp.receivers();
    return st;
  }

  // Asserts the events are Subscribed then messages `from`..`to` of one channel, in order.
  static void ExpectMessages(const std::vector<v1::Event>& events, size_t first, int from, int to) {
    ASSERT_GE(events.size(), first + (to - from + 1));
    for (int i = from; i <= to; ++i) {
      const v1::Event& e = events[first + (i - from)];
      ASSERT_TRUE(e.has_message()) << e.DebugString();
      ASSERT_EQ(e.message().payload(), std::to_string(i));
    }
  }

  RedisServer redis_;
  std::unique_ptr<App> app_;
  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<v1::Bridge::Stub> stub_;
};

TEST_F(GrpcBridgeTest, HundredSubscribersShareOneRedisSubscription) {
  StartApp();
  std::vector<std::unique_ptr<StreamReader>> readers;
  for (int i = 0; i < 100; ++i) {
    // Several client channels, so the streams do not all share one HTTP/2 connection.
    auto ch = i % 4 == 0 ? Connect(app_->grpc_port()) : channel_;
    readers.push_back(std::make_unique<StreamReader>(ch, Channels({"orders"})));
  }
  for (auto& r : readers) ASSERT_TRUE(r->WaitSubscribed());
  EXPECT_EQ(redis_.NumSub("orders"), 1);

  const int kMessages = 200;
  for (int i = 1; i <= kMessages; ++i) {
    int64_t receivers = 0;
    ASSERT_TRUE(Publish("orders", std::to_string(i), &receivers).ok());
    EXPECT_EQ(receivers, 1) << "Redis saw more than one subscriber";
  }
  for (auto& r : readers) {
    ASSERT_TRUE(r->WaitForEvents(1 + kMessages));
    auto events = r->events();
    ASSERT_EQ(events[0].subscribed().channel(), "orders");
    ExpectMessages(events, 1, 1, kMessages);
    for (int i = 1; i <= kMessages; ++i) EXPECT_EQ(events[i].message().seq(), uint64_t(i));
  }
  readers.clear();  // Cancels every stream.
  EXPECT_TRUE(WaitFor([&] { return redis_.NumSub("orders") == 0; }));
}

TEST_F(GrpcBridgeTest, PatternsAndChannelsInOneRequest) {
  StartApp();
  StreamReader r(channel_, Channels({"plain"}, {"news.*"}));
  ASSERT_TRUE(r.WaitSubscribed(2));
  EXPECT_EQ(redis_.NumPat(), 1);
  EXPECT_EQ(redis_.Publish("news.eu", "hello"), 1);
  EXPECT_EQ(redis_.Publish("plain", "p"), 1);
  ASSERT_TRUE(r.WaitForEvents(4));
  auto events = r.events();
  EXPECT_EQ(events[2].message().channel(), "news.eu");
  EXPECT_EQ(events[2].message().pattern(), "news.*");
  EXPECT_EQ(events[2].message().payload(), "hello");
  EXPECT_EQ(events[3].message().channel(), "plain");
  EXPECT_EQ(events[3].message().pattern(), "");
}

// A stream whose topics are all live already gets its Subscribed events together, in one
// batch: the first of them, which carries the response headers, must still go out at once.
TEST_F(GrpcBridgeTest, TopicsAlreadyLiveAreConfirmedTogether) {
  StartApp();
  StreamReader first(channel_, Channels({"plain", "other"}, {"news.*"}));
  ASSERT_TRUE(first.WaitSubscribed(3));
  StreamReader second(channel_, Channels({"plain", "other"}, {"news.*"}));
  ASSERT_TRUE(second.WaitSubscribed(3));
  EXPECT_EQ(redis_.Publish("plain", "p"), 1);
  ASSERT_TRUE(second.WaitForEvents(4));
  EXPECT_EQ(second.events()[3].message().payload(), "p");
}

TEST_F(GrpcBridgeTest, PublishRpcAndRedisCliBothReachSubscribers) {
  StartApp();
  StreamReader r(channel_, Channels({"mixed"}));
  ASSERT_TRUE(r.WaitSubscribed());
  ASSERT_TRUE(Publish("mixed", std::string("bin\0ary", 7)).ok());
  const std::string cli = absl::StrCat("redis-cli -p ", redis_.port(), " PUBLISH mixed from-cli");
  FILE* p = ::popen(cli.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char out[64] = {};
  ASSERT_NE(std::fgets(out, sizeof(out), p), nullptr);
  EXPECT_EQ(::pclose(p), 0);
  EXPECT_STREQ(out, "1\n");
  ASSERT_TRUE(r.WaitForEvents(3));
  auto events = r.events();
  EXPECT_EQ(events[1].message().payload(), std::string("bin\0ary", 7));
  EXPECT_EQ(events[2].message().payload(), "from-cli");
}

// A publish with an idempotency key is made once; the retry says so and reaches no one.
TEST_F(GrpcBridgeTest, PublishWithAnIdempotencyKeyIsMadeOnce) {
  StartApp();
  StreamReader r(channel_, Channels({"keyed"}));
  ASSERT_TRUE(r.WaitSubscribed());
  auto publish = [&](const std::string& payload, const std::string& key,
                     v1::PublishResponse* response) {
    ::grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::PublishRequest req;
    req.set_channel("keyed");
    req.set_payload(payload);
    req.set_idempotency_key(key);
    return stub_->Publish(&ctx, req, response);
  };
  v1::PublishResponse first, retry, other, too_long;
  ASSERT_TRUE(publish("1", "msg-1", &first).ok());
  EXPECT_EQ(first.receivers(), 1);
  EXPECT_FALSE(first.duplicate());
  ASSERT_TRUE(publish("1", "msg-1", &retry).ok());
  EXPECT_EQ(retry.receivers(), 0);
  EXPECT_TRUE(retry.duplicate());
  ASSERT_TRUE(publish("2", "msg-2", &other).ok());
  EXPECT_FALSE(other.duplicate());
  const ::grpc::Status refused = publish("3", std::string(257, 'k'), &too_long);
  EXPECT_EQ(refused.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(refused.error_message(), "idempotency key"))
      << refused.error_message();
  ASSERT_TRUE(r.WaitForEvents(3));
  const auto events = r.events();
  ExpectMessages(events, 1, 1, 2);
  EXPECT_EQ(events.size(), 3u);
}

TEST_F(GrpcBridgeTest, RedisRestartGivesEverySubscriberAGapThenNewMessages) {
  StartApp();
  std::vector<std::unique_ptr<StreamReader>> readers;
  for (int i = 0; i < 10; ++i) {
    readers.push_back(std::make_unique<StreamReader>(channel_, Channels({"r"}, {"r.*"})));
  }
  for (auto& r : readers) ASSERT_TRUE(r->WaitSubscribed(2));
  ASSERT_EQ(redis_.Publish("r", "before"), 1);
  for (auto& r : readers) ASSERT_TRUE(r->WaitForEvents(3));

  auto health = grpc::health::v1::Health::NewStub(channel_);
  auto serving = [&] {
    ::grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    return health->Check(&ctx, req, &resp).ok() &&
           resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  };
  EXPECT_TRUE(serving());

  redis_.Kill();
  ASSERT_TRUE(WaitFor([&] { return !app_->hub().Healthy(); }));
  EXPECT_FALSE(serving());
  // Publishing while Redis is down fails fast instead of hanging.
  const absl::Time before = absl::Now();
  EXPECT_EQ(Publish("r", "lost").error_code(), ::grpc::StatusCode::UNAVAILABLE);
  EXPECT_LT(absl::Now() - before, absl::Seconds(2));

  redis_.Start();
  ASSERT_TRUE(WaitFor([&] { return app_->hub().Healthy(); }, absl::Seconds(20)));
  EXPECT_TRUE(serving());
  EXPECT_EQ(redis_.NumSub("r"), 1);
  ASSERT_EQ(redis_.Publish("r", "after"), 1);
  for (auto& r : readers) {
    // Subscribed x2, "before", a gap for the channel and one for the pattern, "after".
    ASSERT_TRUE(r->WaitForEvents(6));
    auto events = r->events();
    int gaps = 0;
    for (size_t i = 3; i < 5; ++i) {
      ASSERT_TRUE(events[i].has_gap()) << events[i].DebugString();
      EXPECT_EQ(events[i].gap().reason(), "redis_reconnect");
      gaps += events[i].gap().channel() == "r" || events[i].gap().pattern() == "r.*";
    }
    EXPECT_EQ(gaps, 2);
    EXPECT_EQ(events[5].message().payload(), "after");
  }
}

// A client that never reads must not hold back the others, and its backlog is bounded:
// the bridge drops its oldest messages and says how many.
TEST_F(GrpcBridgeTest, StalledSubscriberDoesNotHoldBackOthers) {
  AppOptions options;
  options.subscriber.max_queued_messages = 100;
  StartApp(options);

  // The stalled client reads only when told; small HTTP/2 windows keep gRPC's own
  // buffers from absorbing the backlog.
  ::grpc::ChannelArguments small;
  small.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  small.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  auto stalled_channel = Connect(app_->grpc_port(), small);
  auto stalled_stub = v1::Bridge::NewStub(stalled_channel);
  ::grpc::ClientContext stalled_ctx;
  auto stalled = stalled_stub->Subscribe(&stalled_ctx, Channels({"flood"}));
  v1::Event first;
  ASSERT_TRUE(stalled->Read(&first));
  ASSERT_TRUE(first.has_subscribed());

  StreamReader fast(channel_, Channels({"flood"}));
  ASSERT_TRUE(fast.WaitSubscribed());
  const int kMessages = 5000;
  const std::string payload(4096, 'x');
  // In batches smaller than the queue, each waited for by the reading subscriber: it is
  // never behind by more than its queue holds, whatever the machine's load.
  for (int i = 1; i <= kMessages; ++i) {
    ASSERT_EQ(redis_.Publish("flood", absl::StrCat(i, ":", payload)), 1);
    if (i % 50 == 0) {
      ASSERT_TRUE(fast.WaitForEvents(1 + i)) << "held back at " << i;
    }
  }
  ASSERT_TRUE(fast.WaitForEvents(1 + kMessages));
  auto events = fast.events();
  for (int i = 1; i <= kMessages; ++i) ASSERT_EQ(events[i].message().seq(), uint64_t(i));

  // Now read the stalled stream: what Redis sent beyond the queue and the transport's
  // buffers was dropped, and the stream says so before going on.
  uint64_t dropped = 0, received = 0, last_seq = 0;
  v1::Event e;
  while (last_seq < uint64_t(kMessages) && stalled->Read(&e)) {
    if (e.has_gap()) {
      EXPECT_EQ(e.gap().reason(), "slow_consumer");
      dropped += e.gap().dropped();
    } else {
      ASSERT_GT(e.message().seq(), last_seq);
      last_seq = e.message().seq();
      ++received;
    }
  }
  EXPECT_EQ(last_seq, uint64_t(kMessages));
  EXPECT_EQ(dropped + received, uint64_t(kMessages)) << "a loss went unreported";
  EXPECT_GT(dropped, uint64_t(kMessages) / 2) << "the backlog was not bounded";
  stalled_ctx.TryCancel();
  stalled->Finish();
}

// The Subscribed events a read brought: one Event, or a batch of them.
int SubscribedIn(const v1::Event& event) { return event.has_subscribed() ? 1 : 0; }
int SubscribedIn(const v1::EventBatch& batch) {
  int n = 0;
  for (const v1::Event& e : batch.events()) n += SubscribedIn(e);
  return n;
}

// Under the disconnect policy a client that stops reading is cut off while it still does
// not read: its write never completes (HTTP/2 flow control), so the stream must not wait
// for it. The hub forgets the subscriber and Redis the channel only it held; the reading
// subscriber goes on. `open` starts the stalled client's call: Subscribe or
// SubscribeBatched, whose Response is Event or EventBatch.
template <typename Response, typename Open>
void ExpectDisconnectPolicyEndsTheSlowStreamOnly(App& app, RedisServer& redis,
                                                 std::shared_ptr<::grpc::Channel> channel,
                                                 Open open) {
  ::grpc::ChannelArguments small;
  small.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  small.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  auto stalled_stub = v1::Bridge::NewStub(Connect(app.grpc_port(), small));
  ::grpc::ClientContext stalled_ctx;
  std::unique_ptr<::grpc::ClientReader<Response>> stalled =
      open(stalled_stub.get(), &stalled_ctx, Channels({"d", "d.stalled"}));
  Response e;
  for (int subscribed = 0; subscribed < 2;) {
    ASSERT_TRUE(stalled->Read(&e));
    subscribed += SubscribedIn(e);
  }
  StreamReader fast(channel, Channels({"d"}));
  ASSERT_TRUE(fast.WaitSubscribed());
  ASSERT_EQ(app.hub().Stats().subscribers, 2u);
  ASSERT_EQ(redis.NumSub("d.stalled"), 1);

  // In lockstep with the reading subscriber, so only the stalled one falls behind, until
  // the stalled one is gone: far more than its queue and the transport's buffers hold.
  const std::string payload(4096, 'x');
  const int kMaxMessages = 8000;
  int published = 0;
  while (published < kMaxMessages && app.hub().Stats().subscribers == 2) {
    ASSERT_EQ(redis.Publish("d", payload), 1);
    ++published;
    ASSERT_TRUE(fast.WaitForEvents(1 + published)) << "the reading subscriber was held back";
  }
  // The stalled client still reads nothing.
  EXPECT_TRUE(WaitFor([&] { return app.hub().Stats().subscribers == 1; }, absl::Seconds(5)))
      << "the stalled stream is still held after " << published << " messages";
  EXPECT_TRUE(WaitFor([&] { return redis.NumSub("d.stalled") == 0; }, absl::Seconds(5)));
  EXPECT_EQ(redis.NumSub("d"), 1);
  ASSERT_EQ(redis.Publish("d", "after"), 1);
  ASSERT_TRUE(fast.WaitForEvents(2 + published));
  EXPECT_EQ(fast.events().back().message().payload(), "after");

  // Reading again, the client finds its stream ended with the slow consumer's status: the
  // server cancelled it with that status, since the stalled write could not finish first.
  while (stalled->Read(&e)) {
  }
  ::grpc::Status st = stalled->Finish();
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "slow consumer")) << st.error_message();
}

TEST_F(GrpcBridgeTest, DisconnectPolicyEndsTheSlowStreamOnly) {
  AppOptions options;
  options.subscriber.max_queued_messages = 10;
  options.subscriber.policy = hub::SlowConsumerPolicy::kDisconnect;
  StartApp(options);
  ExpectDisconnectPolicyEndsTheSlowStreamOnly<v1::Event>(
      *app_, redis_, channel_,
      [](v1::Bridge::Stub* stub, ::grpc::ClientContext* ctx, const v1::SubscribeRequest& req) {
        return stub->Subscribe(ctx, req);
      });
}

TEST_F(GrpcBridgeTest, DisconnectPolicyEndsTheSlowBatchedStreamOnly) {
  AppOptions options;
  options.subscriber.max_queued_messages = 10;
  options.subscriber.policy = hub::SlowConsumerPolicy::kDisconnect;
  StartApp(options);
  ExpectDisconnectPolicyEndsTheSlowStreamOnly<v1::EventBatch>(
      *app_, redis_, channel_,
      [](v1::Bridge::Stub* stub, ::grpc::ClientContext* ctx, const v1::SubscribeRequest& req) {
        return stub->SubscribeBatched(ctx, req);
      });
}

TEST_F(GrpcBridgeTest, BadInputGetsClearStatusAndDisturbsNoOne) {
  AppOptions options;
  options.subscriber.max_topics = 3;
  options.hub.max_payload_bytes = 1000;
  StartApp(options);
  StreamReader bystander(channel_, Channels({"calm"}));
  ASSERT_TRUE(bystander.WaitSubscribed());

  auto status_of = [&](const v1::SubscribeRequest& req) {
    StreamReader r(channel_, req);
    return r.WaitForEnd();
  };
  EXPECT_EQ(status_of(Channels({})).error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status_of(Channels({""})).error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status_of(Channels({}, {""})).error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status_of(Channels({std::string(300, 'c')})).error_code(),
            ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status_of(Channels({"a", "b", "c", "d"})).error_code(),
            ::grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Publish("calm", std::string(1001, 'x')).error_code(),
            ::grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Publish("", "x").error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Publish("calm", std::string(1 << 20, 'x')).error_code(),
            ::grpc::StatusCode::RESOURCE_EXHAUSTED);

  // A request with a field this server does not know (number 99) is refused, not
  // half-understood.
  ::grpc::GenericStub generic(channel_);
  const std::string unknown_field("\x0a\x01z\x9a\x06\x01x", 7);  // channels:"z", 99:"x"
  ::grpc::Slice slice(unknown_field);
  ::grpc::ByteBuffer request(&slice, 1);
  ::grpc::ClientContext ctx;
  ::grpc::CompletionQueue cq;
  auto call = generic.PrepareCall(&ctx, "/bridge.v1.Bridge/Subscribe", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  ::grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_FALSE(ok) << "a stream was opened for a request with unknown fields";
  ::grpc::Status st;
  call->Finish(&st, reinterpret_cast<void*>(5));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }

  ASSERT_TRUE(Publish("calm", "still here").ok());
  ASSERT_TRUE(bystander.WaitForEvents(2));
  EXPECT_EQ(bystander.events()[1].message().payload(), "still here");
}

// SubscribeBatched carries what Subscribe carries: Subscribed first, the messages in
// order, a gap for each subscription after a Redis restart, the same bytes of each event.
TEST_F(GrpcBridgeTest, BatchedStreamCarriesTheEventsOfSubscribe) {
  StartApp();
  StreamReader plain(channel_, Channels({"b"}, {"b.*"}));
  ASSERT_TRUE(plain.WaitSubscribed(2));
  StreamReader batched(channel_, Channels({"b"}, {"b.*"}), "", Method::kSubscribeBatched);
  ASSERT_TRUE(batched.WaitSubscribed(2));
  auto first = batched.events();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_TRUE(first[0].has_subscribed() && first[1].has_subscribed());

  const int kMessages = 300;
  for (int i = 1; i <= kMessages; ++i) {
    ASSERT_EQ(redis_.Publish(i % 2 == 0 ? "b" : "b.x", std::to_string(i)), 1);
  }
  // "b.x" reaches the pattern only, "b" the channel only.
  ASSERT_TRUE(batched.WaitForEvents(2 + kMessages));
  ASSERT_TRUE(plain.WaitForEvents(2 + kMessages));
  redis_.Kill();
  ASSERT_TRUE(WaitFor([&] { return !app_->hub().Healthy(); }));
  redis_.Start();
  ASSERT_TRUE(WaitFor([&] { return app_->hub().Healthy(); }, absl::Seconds(20)));
  ASSERT_EQ(redis_.Publish("b", "after"), 1);
  ASSERT_TRUE(batched.WaitForEvents(2 + kMessages + 3));
  ASSERT_TRUE(plain.WaitForEvents(2 + kMessages + 3));

  const std::vector<v1::Event> events = batched.events();
  const std::vector<v1::Event> expected = plain.events();
  ASSERT_EQ(events.size(), expected.size());
  for (size_t i = 2; i < events.size(); ++i) {
    EXPECT_EQ(events[i].SerializeAsString(), expected[i].SerializeAsString())
        << i << ": " << events[i].DebugString() << " vs " << expected[i].DebugString();
  }
  for (int i = 1; i <= kMessages; ++i) {
    const v1::Event& e = events[1 + i];
    ASSERT_EQ(e.message().payload(), std::to_string(i));
    EXPECT_EQ(e.message().seq(), uint64_t((i + 1) / 2));  // each subscription counts its own
  }
  EXPECT_EQ(events[2 + kMessages].gap().reason(), "redis_reconnect");
  EXPECT_EQ(events[3 + kMessages].gap().reason(), "redis_reconnect");
  EXPECT_EQ(events[4 + kMessages].message().payload(), "after");
  for (size_t n : batched.batch_sizes()) EXPECT_GE(n, 1u);
}

// A stream whose client stops reading piles events up in the hub; when it reads again,
// each write carries what is queued, up to the caps: 256 events, 64 KiB unless one event
// alone is larger.
TEST_F(GrpcBridgeTest, BatchedStreamFillsBatchesUpToTheCaps) {
  AppOptions options;
  options.subscriber.max_queued_messages = 10000;
  StartApp(options);
  ::grpc::ChannelArguments small;
  small.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  small.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  auto stalled_stub = v1::Bridge::NewStub(Connect(app_->grpc_port(), small));
  ::grpc::ClientContext stalled_ctx;
  auto stalled = stalled_stub->SubscribeBatched(&stalled_ctx, Channels({"load"}));
  v1::EventBatch batch;
  ASSERT_TRUE(stalled->Read(&batch));
  ASSERT_EQ(batch.events_size(), 1);
  ASSERT_TRUE(batch.events(0).has_subscribed());
  StreamReader fast(channel_, Channels({"load"}));
  ASSERT_TRUE(fast.WaitSubscribed());

  // Large messages first, more than HTTP/2's windows take, so that the stalled stream's
  // write waits for the client; the rest queues in the hub behind it.
  const int kLarge = 64, kSmall = 1000, kAfter = 10;
  for (int i = 0; i < kLarge; ++i) ASSERT_EQ(redis_.Publish("load", std::string(4096, 'L')), 1);
  for (int i = 0; i < kSmall; ++i) ASSERT_EQ(redis_.Publish("load", "s"), 1);
  const std::string huge(100 * 1024, 'H');
  ASSERT_EQ(redis_.Publish("load", huge), 1);
  for (int i = 0; i < kAfter; ++i) ASSERT_EQ(redis_.Publish("load", "t"), 1);
  const int kTotal = kLarge + kSmall + 1 + kAfter;
  // The reading stream has them all, so the hub has queued them all for the stalled one.
  ASSERT_TRUE(fast.WaitForEvents(1 + kTotal));

  uint64_t last_seq = 0;
  int most_events = 0, most_large = 0, huge_batch_events = 0;
  while (last_seq < uint64_t(kTotal) && stalled->Read(&batch)) {
    ASSERT_GT(batch.events_size(), 0);
    EXPECT_LE(batch.events_size(), 256);
    if (batch.events_size() > 1) {
      EXPECT_LE(batch.ByteSizeLong(), 64u * 1024);
    }
    int large = 0;
    for (const v1::Event& e : batch.events()) {
      ASSERT_TRUE(e.has_message()) << e.DebugString();
      ASSERT_EQ(e.message().seq(), last_seq + 1) << "lost or out of order";
      last_seq = e.message().seq();
      large += e.message().payload().size() == 4096;
      if (e.message().payload() == huge) huge_batch_events = batch.events_size();
    }
    most_events = std::max(most_events, batch.events_size());
    most_large = std::max(most_large, large);
  }
  EXPECT_EQ(last_seq, uint64_t(kTotal));
  EXPECT_EQ(most_events, 256) << "the small messages queued together were not batched";
  EXPECT_GT(most_large, 1) << "the large messages queued together were not batched";
  EXPECT_LE(most_large, 64 * 1024 / 4096);
  EXPECT_EQ(huge_batch_events, 1) << "a message over 64 KiB comes alone";
  stalled_ctx.TryCancel();
  stalled->Finish();
}

// Every check of Subscribe, with its status and message, holds for SubscribeBatched.
TEST_F(GrpcBridgeTest, BatchedStreamIsRefusedAsSubscribeIs) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/grpc-batched-access-", getpid(), ".json");
  WriteFile(path, R"({"clients": [
    {"name": "ui", "token": "ui-token-0123456789", "subscribe": ["prices.*"]}]})");
  AppOptions options;
  options.access_file = path;
  options.subscriber.max_topics = 3;
  StartApp(options);
  const std::string ui = "ui-token-0123456789";
  struct Case {
    v1::SubscribeRequest request;
    std::string token;
    ::grpc::StatusCode code;
  };
  const std::vector<Case> cases = {
      {Channels({"prices.eu"}), "", ::grpc::StatusCode::UNAUTHENTICATED},
      {Channels({"prices.eu"}), "not-a-token-0123456789", ::grpc::StatusCode::UNAUTHENTICATED},
      {Channels({"prices.eu", "orders"}), ui, ::grpc::StatusCode::PERMISSION_DENIED},
      {Channels({}, {"p*"}), ui, ::grpc::StatusCode::PERMISSION_DENIED},
      {Channels({}), ui, ::grpc::StatusCode::INVALID_ARGUMENT},
      {Channels({"prices\nx"}), ui, ::grpc::StatusCode::INVALID_ARGUMENT},
      {Channels({"prices.a", "prices.b", "prices.c", "prices.d"}), ui,
       ::grpc::StatusCode::RESOURCE_EXHAUSTED},
  };
  for (const Case& c : cases) {
    StreamReader plain(channel_, c.request, c.token);
    StreamReader batched(channel_, c.request, c.token, Method::kSubscribeBatched);
    const ::grpc::Status want = plain.WaitForEnd();
    const ::grpc::Status got = batched.WaitForEnd();
    EXPECT_EQ(want.error_code(), c.code) << c.request.DebugString();
    EXPECT_EQ(got.error_code(), want.error_code()) << c.request.DebugString();
    EXPECT_EQ(got.error_message(), want.error_message());
    EXPECT_TRUE(batched.events().empty());
  }
  EXPECT_EQ(redis_.NumSub("prices.eu"), 0);

  StreamReader allowed(channel_, Channels({"prices.eu"}), ui, Method::kSubscribeBatched);
  ASSERT_TRUE(allowed.WaitSubscribed());
  ASSERT_EQ(redis_.Publish("prices.eu", "1.25"), 1);
  ASSERT_TRUE(allowed.WaitForEvents(2));
  EXPECT_EQ(allowed.events()[1].message().payload(), "1.25");
  // Shutdown ends it as it ends a Subscribe stream.
  app_->Shutdown();
  EXPECT_EQ(allowed.WaitForEnd().error_code(), ::grpc::StatusCode::UNAVAILABLE);
  std::remove(path.c_str());
}

// A request whose bytes do not decode (a string field that is not UTF-8) gets
// INVALID_ARGUMENT with a message from both methods, as README says, not gRPC's bare
// UNIMPLEMENTED; a well-formed request after it is served as usual.
TEST_F(GrpcBridgeTest, UndecodableRequestsAreInvalidArgument) {
  StartApp();
  auto raw_call = [&](const std::string& method, const std::string& bytes) {
    ::grpc::GenericStub generic(channel_);
    ::grpc::Slice slice(bytes);
    ::grpc::ByteBuffer request(&slice, 1);
    ::grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ::grpc::CompletionQueue cq;
    auto rpc = generic.PrepareUnaryCall(&ctx, method, request, &cq);
    rpc->StartCall();
    ::grpc::ByteBuffer response;
    ::grpc::Status st;
    rpc->Finish(&response, &st, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return st;
  };
  const std::string bad_channel("\x0a\x02\xff\xfe\x12\x01x", 7);  // channel: FF FE, payload: "x"
  ::grpc::Status publish = raw_call("/bridge.v1.Bridge/Publish", bad_channel);
  EXPECT_EQ(publish.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << publish.error_message();
  EXPECT_TRUE(absl::StrContains(publish.error_message(), "not a PublishRequest"))
      << publish.error_message();
  ::grpc::Status subscribe = raw_call("/bridge.v1.Bridge/Subscribe", bad_channel.substr(0, 4));
  EXPECT_EQ(subscribe.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT)
      << subscribe.error_message();
  EXPECT_TRUE(absl::StrContains(subscribe.error_message(), "not a SubscribeRequest"))
      << subscribe.error_message();
  ::grpc::Status batched = raw_call("/bridge.v1.Bridge/SubscribeBatched", bad_channel.substr(0, 4));
  EXPECT_EQ(batched.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << batched.error_message();
  EXPECT_EQ(batched.error_message(), subscribe.error_message());

  int64_t receivers = -1;
  ASSERT_TRUE(Publish("calm", "decodable", &receivers).ok());
  EXPECT_EQ(receivers, 0);
}

// Bridge connects as a Redis user whose ACL allows the channels app:* only. A stream asking
// for another channel ends with PERMISSION_DENIED; the others go on, and Bridge does not
// keep asking Redis for the channel (each refusal costs the shared subscriber connection).
TEST_F(GrpcBridgeTest, AChannelRedisRefusesEndsOnlyItsStreams) {
  // The delivery probe's channels allowed, as README advises: a refused probe would cost
  // the subscriber connection once, racing the refusal this test is about.
  RedisServer acl({"user app on >pw ~* resetchannels &app:* &__bridge_probe__:* +@all"});
  StartApp({}, "redis://app:pw@127.0.0.1:" + std::to_string(acl.port()));

  StreamReader allowed(channel_, Channels({"app:a"}));
  ASSERT_TRUE(allowed.WaitSubscribed(1));
  StreamReader refused(channel_, Channels({"app:b", "forbidden"}));
  ::grpc::Status st = refused.WaitForEnd();
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "forbidden")) << st.error_message();

  // A second stream for it is refused from memory, without another round trip to Redis.
  StreamReader again(channel_, Channels({"forbidden"}));
  EXPECT_EQ(again.WaitForEnd().error_code(), ::grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(app_->upstream_stats().subscribes_refused, 1u);
  EXPECT_TRUE(WaitFor([&] { return app_->hub().Healthy(); }));
  EXPECT_TRUE(WaitFor([&] { return acl.NumSub("app:b") == 0; }));
  ASSERT_TRUE(WaitFor([&] { return acl.NumSub("app:a") == 1; }));
  EXPECT_EQ(acl.Publish("app:a", "still here"), 1);
  ASSERT_TRUE(WaitFor([&] {
    auto events = allowed.events();
    return !events.empty() && events.back().has_message() &&
           events.back().message().payload() == "still here";
  }));
}

// The delivery probe's channels are Bridge's own: a client asking for one is refused, and
// a client's pattern that matches them gets none of the probes.
TEST_F(GrpcBridgeTest, ProbeChannelsAreNoClientsBusiness) {
  AppOptions options;
  options.redis.probe_interval = absl::Milliseconds(20);
  StartApp(options);
  StreamReader everything(channel_, Channels({}, {"*"}));
  ASSERT_TRUE(everything.WaitSubscribed(1));
  StreamReader refused(channel_, Channels({"__bridge_probe__:guess"}));
  ::grpc::Status st = refused.WaitForEnd();
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "reserved")) << st.error_message();
  // Probes went by meanwhile; then one message of a client.
  const uint64_t sent = app_->upstream_stats().probes_sent;
  ASSERT_TRUE(WaitFor([&] { return app_->upstream_stats().probes_sent >= sent + 5; }));
  ASSERT_GE(redis_.Publish("news", "hi"), 1);
  ASSERT_TRUE(everything.WaitForEvents(2));
  const std::vector<v1::Event> events = everything.events();
  ASSERT_EQ(events.size(), 2u);
  ASSERT_TRUE(events[1].has_message()) << events[1].DebugString();
  EXPECT_EQ(events[1].message().channel(), "news");
}

TEST_F(GrpcBridgeTest, CancelReleasesSubscriptionsAtOnce) {
  StartApp();
  auto r = std::make_unique<StreamReader>(channel_, Channels({"c1", "c2"}, {"c.*"}));
  ASSERT_TRUE(r->WaitSubscribed(3));
  EXPECT_EQ(redis_.NumSub("c1"), 1);
  r->Cancel();
  EXPECT_TRUE(WaitFor([&] {
    return redis_.NumSub("c1") == 0 && redis_.NumSub("c2") == 0 && redis_.NumPat() == 0;
  }));
}

// Bridge leaves gRPC's deadline filter out of its server stack (app.cc): a client's
// deadline still ends its stream, from the client's side, and the server releases the
// stream's subscriptions when it hears of it.
TEST_F(GrpcBridgeTest, ClientDeadlineEndsStreamAndReleasesSubscriptions) {
  StartApp();
  ::grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  auto reader = stub_->Subscribe(&ctx, Channels({"d1"}));
  v1::Event first;
  ASSERT_TRUE(reader->Read(&first));
  ASSERT_TRUE(first.has_subscribed());
  EXPECT_EQ(redis_.NumSub("d1"), 1);
  v1::Event event;
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), ::grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(WaitFor([&] { return redis_.NumSub("d1") == 0; }));
}

// Bridge leaves gRPC's compression filter out of its server stack (app.cc); decompressing
// what clients send is another filter, kept: a gzip-compressed Publish is delivered.
TEST_F(GrpcBridgeTest, CompressedPublishIsDelivered) {
  StartApp();
  StreamReader r(channel_, Channels({"zipped"}));
  ASSERT_TRUE(r.WaitSubscribed());
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  v1::PublishRequest req;
  req.set_channel("zipped");
  req.set_payload(std::string(4096, 'z'));
  v1::PublishResponse resp;
  ASSERT_TRUE(stub_->Publish(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.receivers(), 1);
  ASSERT_TRUE(r.WaitForEvents(2));
  EXPECT_EQ(r.events()[1].message().payload(), std::string(4096, 'z'));
}

// A Publish that Redis holds must not keep the drain past its grace: gRPC's shutdown
// waits for every call, Publish included, and the upstream would answer it only at its
// publish timeout.
TEST_F(GrpcBridgeTest, ShutdownAnswersAPublishRedisHolds) {
  AppOptions options;
  options.redis.publish_timeout = absl::Seconds(60);
  StartApp(options);  // 2 s of grace
  ASSERT_TRUE(redis_.Command({"CLIENT", "PAUSE", "20000", "WRITE"}).ok());
  ::grpc::ClientContext ctx;
  v1::PublishRequest req;
  req.set_channel("held");
  req.set_payload("x");
  v1::PublishResponse resp;
  absl::Notification answered;
  ::grpc::Status status;
  stub_->async()->Publish(&ctx, &req, &resp, [&](::grpc::Status st) {
    status = std::move(st);
    answered.Notify();
  });
  // Redis has the PUBLISH and holds it.
  auto blocked_clients = [&] {
    absl::StatusOr<std::string> info = redis_.Command({"INFO", "clients"});
    return info.ok() && absl::StrContains(*info, "blocked_clients:1");
  };
  // Not ASSERT: the call must be answered before ctx goes.
  EXPECT_TRUE(WaitFor(blocked_clients));

  const absl::Time before = absl::Now();
  app_->Shutdown();
  EXPECT_LT(absl::Now() - before, absl::Seconds(3));
  EXPECT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(1)));
  if (!answered.HasBeenNotified()) {
    ctx.TryCancel();
    answered.WaitForNotification();
  }
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(redis_.Command({"CLIENT", "UNPAUSE"}).ok());
}

// Streams that start while the server shuts down: Hub::Shutdown may wake one between
// Hub::Connect and the moment the stream stored its subscriber. Each ends, and none is left
// behind: UNAVAILABLE from the bridge, or CANCELLED, which gRPC itself gives some of the
// calls that arrive as the server shuts down.
TEST_F(GrpcBridgeTest, StreamsStartingDuringShutdownAllEnd) {
  StartApp();
  std::vector<std::unique_ptr<StreamReader>> readers;
  for (int i = 0; i < 200; ++i) {
    readers.push_back(
        std::make_unique<StreamReader>(channel_, Channels({absl::StrCat("starting.", i % 10)})));
  }
  app_->Shutdown();
  for (auto& r : readers) {
    const ::grpc::Status st = r->WaitForEnd(absl::Seconds(5));
    EXPECT_TRUE(st.error_code() == ::grpc::StatusCode::UNAVAILABLE ||
                st.error_code() == ::grpc::StatusCode::CANCELLED)
        << st.error_code() << " " << st.error_message();
  }
  EXPECT_EQ(app_->hub().Stats().subscribers, 0u);
}

TEST_F(GrpcBridgeTest, ShutdownEndsStreamsWithUnavailable) {
  StartApp();
  StreamReader r(channel_, Channels({"s"}));
  ASSERT_TRUE(r.WaitSubscribed());
  const absl::Time before = absl::Now();
  app_->Shutdown();
  EXPECT_LT(absl::Now() - before, absl::Seconds(3));
  EXPECT_EQ(r.WaitForEnd().error_code(), ::grpc::StatusCode::UNAVAILABLE);
}

// With an access file, a call needs a known token, and each topic and publish its grant.
TEST_F(GrpcBridgeTest, AccessFileDecidesWhoSubscribesAndPublishesWhat) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/grpc-access-", getpid(), ".json");
  WriteFile(path, R"({"clients": [
    {"name": "ui", "token": "ui-token-0123456789", "subscribe": ["prices.*", "news.*"]},
    {"name": "pricer", "token": "pricer-token-0123456789", "publish": ["prices.*"]}]})");
  AppOptions options;
  options.access_file = path;
  StartApp(options);
  const std::string ui = "ui-token-0123456789", pricer = "pricer-token-0123456789";

  // No token, an unknown one, a token given without the Bearer scheme.
  StreamReader anonymous(channel_, Channels({"prices.eu"}));
  EXPECT_EQ(anonymous.WaitForEnd().error_code(), ::grpc::StatusCode::UNAUTHENTICATED);
  StreamReader unknown(channel_, Channels({"prices.eu"}), "not-a-token-0123456789");
  EXPECT_EQ(unknown.WaitForEnd().error_code(), ::grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Publish("prices.eu", "x", nullptr, "").error_code(),
            ::grpc::StatusCode::UNAUTHENTICATED);

  // A request with one topic outside the grant is refused whole, and subscribes nothing.
  StreamReader mixed(channel_, Channels({"prices.eu", "orders"}), ui);
  ::grpc::Status st = mixed.WaitForEnd();
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(st.error_message().find("channel orders"), std::string::npos) << st.error_message();
  // A pattern only as the grant writes it: "news.*" is, "n*" would reach "nominal" too.
  StreamReader wide(channel_, Channels({}, {"n*"}), ui);
  EXPECT_EQ(wide.WaitForEnd().error_code(), ::grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(redis_.NumSub("prices.eu"), 0);
  // A bad name is INVALID_ARGUMENT whatever the grant: no refusal ever quotes one.
  StreamReader bad_name(channel_, Channels({"orders\nfake log line"}), ui);
  EXPECT_EQ(bad_name.WaitForEnd().error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Publish("news\nfake", "x", nullptr, pricer).error_code(),
            ::grpc::StatusCode::INVALID_ARGUMENT);

  StreamReader allowed(channel_, Channels({"prices.eu"}, {"news.*"}), ui);
  ASSERT_TRUE(allowed.WaitSubscribed(2));
  int64_t receivers = 0;
  ASSERT_TRUE(Publish("prices.eu", "1.25", &receivers, pricer).ok());
  EXPECT_EQ(receivers, 1);
  EXPECT_EQ(Publish("news.eu", "x", nullptr, pricer).error_code(),
            ::grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Publish("prices.eu", "x", nullptr, ui).error_code(),
            ::grpc::StatusCode::PERMISSION_DENIED);
  // The pricer subscribes to nothing.
  StreamReader pricer_stream(channel_, Channels({"prices.eu"}), pricer);
  EXPECT_EQ(pricer_stream.WaitForEnd().error_code(), ::grpc::StatusCode::PERMISSION_DENIED);
  // Publishes go to Redis in order: had a refused one gone, it would come before this.
  ASSERT_TRUE(Publish("prices.eu", "1.50", nullptr, pricer).ok());
  ASSERT_TRUE(allowed.WaitForEvents(4));
  EXPECT_EQ(allowed.events()[2].message().payload(), "1.25");
  EXPECT_EQ(allowed.events()[3].message().payload(), "1.50");

  // Health needs no token.
  auto health = ::grpc::health::v1::Health::NewStub(channel_);
  ::grpc::ClientContext ctx;
  ::grpc::health::v1::HealthCheckRequest hreq;
  ::grpc::health::v1::HealthCheckResponse hresp;
  EXPECT_TRUE(health->Check(&ctx, hreq, &hresp).ok());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace bridge::testing
