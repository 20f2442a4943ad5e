#include "bridge/redis/redis_upstream.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/hub/upstream.h"
#include "bridge/redis/delivery_probe.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"

namespace bridge::redis {
namespace {

using ::bridge::hub::Topic;
using ::bridge::testing::RedisServer;
using ::bridge::testing::WaitFor;

constexpr absl::Duration kWait = absl::Seconds(10);

struct Event {
  enum Kind { kConnected, kDisconnected, kSubscribed, kUnsubscribed, kMessage } kind;
  uint64_t epoch = 0;
  Topic topic;
  std::string channel;
  std::string payload;
};

// Records listener calls; tests wait on them with a deadline.
class RecordingListener : public hub::UpstreamListener {
 public:
  void OnUpstreamConnected(uint64_t epoch) override {
    Add({Event::kConnected, epoch, Topic(), "", ""});
  }
  void OnUpstreamDisconnected() override { Add({Event::kDisconnected, 0, Topic(), "", ""}); }
  void OnTopicsLost(const std::vector<Topic>&) override {
    ADD_FAILURE() << "one Redis server loses its topics only all at once, with its connection";
  }
  void OnSubscribeConfirmed(const Topic& topic) override {
    Add({Event::kSubscribed, 0, topic, "", ""});
  }
  void OnUnsubscribeConfirmed(const Topic& topic) override {
    Add({Event::kUnsubscribed, 0, topic, "", ""});
  }
  void OnMessage(const Topic& topic, std::string_view channel, std::string_view payload) override {
    Add({Event::kMessage, 0, topic, std::string(channel), std::string(payload)});
  }
  void OnSubscribeRefused(const Topic& topic, const absl::Status& why) override {
    absl::MutexLock lock(&mu_);
    refused_.emplace_back(topic, why);
  }

  // The refusals reported, once there are `n`.
  std::vector<std::pair<Topic, absl::Status>> AwaitRefused(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return refused_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return refused_;
  }

  // The first event from index `from` on that `match` accepts, once there is one.
  template <typename Match>
  std::optional<Event> Await(size_t from, Match match) {
    absl::MutexLock lock(&mu_);
    std::optional<Event> found;
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (size_t i = from; i < events_.size(); ++i) {
        if (match(events_[i])) {
          found = events_[i];
          return true;
        }
      }
      return false;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), kWait);
    return found;
  }

  uint64_t AwaitConnected(size_t from = 0) {
    std::optional<Event> e =
        Await(from, [](const Event& e) { return e.kind == Event::kConnected; });
    return e ? e->epoch : 0;
  }
  bool AwaitKind(Event::Kind kind, const Topic& topic, size_t from = 0) {
    return Await(from, [&](const Event& e) { return e.kind == kind && e.topic == topic; })
        .has_value();
  }

  size_t size() const {
    absl::MutexLock lock(&mu_);
    return events_.size();
  }
  std::vector<Event> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  int Count(Event::Kind kind) const {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const Event& e : events_) n += e.kind == kind;
    return n;
  }

 private:
  void Add(Event e) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(e));
  }

  mutable absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<Topic, absl::Status>> refused_ ABSL_GUARDED_BY(mu_);
};

// The answer to one Publish, awaited with a deadline.
class PublishResult {
 public:
  hub::Upstream::PublishCallback Callback() {
    return [this](absl::StatusOr<int64_t> r) {
      absl::MutexLock lock(&mu_);
      ++calls_;
      result_ = std::move(r);
    };
  }
  absl::StatusOr<int64_t> Await() {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_ > 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), kWait)) {
      return absl::DeadlineExceededError("test: no publish answer");
    }
    return result_;
  }
  int calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  mutable absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::StatusOr<int64_t> result_ ABSL_GUARDED_BY(mu_) = absl::UnknownError("unset");
};

class RedisUpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  void TearDown() override {
    if (upstream_) upstream_->Stop();
    upstream_.reset();
    work_.reset();
    for (std::thread& t : threads_) t.join();
  }

  RedisUpstreamOptions Options(std::string url) {
    RedisUpstreamOptions options;
    options.url = std::move(url);
    options.connect_timeout = absl::Seconds(2);
    options.backoff_initial = absl::Milliseconds(10);
    options.backoff_max = absl::Milliseconds(200);
    // The delivery probe would drop the subscriber connection of the tests that hold Redis
    // on purpose; its own tests turn it on (ProbeOptions).
    options.probe_interval = absl::ZeroDuration();
    return options;
  }

  // Options with a fast delivery probe: one every 100 ms, lost after 300 ms.
  RedisUpstreamOptions ProbeOptions(std::string url) {
    RedisUpstreamOptions options = Options(std::move(url));
    options.probe_interval = kProbeInterval;
    options.probe_timeout = kProbeTimeout;
    options.connect_timeout = absl::Milliseconds(300);
    return options;
  }
  static constexpr absl::Duration kProbeInterval = absl::Milliseconds(100);
  static constexpr absl::Duration kProbeTimeout = absl::Milliseconds(300);

  void StartUpstream(const RedisUpstreamOptions& options) {
    absl::StatusOr<std::unique_ptr<RedisUpstream>> upstream = RedisUpstream::Create(options, io_);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = *std::move(upstream);
    upstream_->SetListener(&listener_);
    upstream_->Start();
  }

  // Starts against `server` and waits for both connections.
  uint64_t Connect(const RedisServer& server) {
    StartUpstream(Options(server.url()));
    const uint64_t epoch = listener_.AwaitConnected();
    EXPECT_NE(epoch, 0u);
    EXPECT_TRUE(WaitFor([&] { return upstream_->connected(); }, kWait));
    return epoch;
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::vector<std::thread> threads_;
  RecordingListener listener_;
  std::unique_ptr<RedisUpstream> upstream_;
};

TEST_F(RedisUpstreamTest, CreateRejectsBadUrl) {
  absl::StatusOr<std::unique_ptr<RedisUpstream>> upstream =
      RedisUpstream::Create(Options("redis://h:0"), io_);
  EXPECT_EQ(upstream.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RedisUpstreamTest, SubscribeConfirmsAndDeliversChannelMessages) {
  RedisServer server;
  const uint64_t epoch = Connect(server);
  upstream_->Subscribe(Topic::Channel("news"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("news")));
  EXPECT_EQ(server.NumSub("news"), 1);

  const size_t mark = listener_.size();
  EXPECT_EQ(server.Publish("news", "hello"), 1);
  std::optional<Event> m =
      listener_.Await(mark, [](const Event& e) { return e.kind == Event::kMessage; });
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->topic, Topic::Channel("news"));
  EXPECT_EQ(m->channel, "news");
  EXPECT_EQ(m->payload, "hello");
}

TEST_F(RedisUpstreamTest, PatternSubscribeDeliversWithThePattern) {
  RedisServer server;
  const uint64_t epoch = Connect(server);
  upstream_->Subscribe(Topic::Pattern("news.*"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Pattern("news.*")));
  EXPECT_EQ(server.NumPat(), 1);

  EXPECT_EQ(server.Publish("news.eu", "bonjour"), 1);
  std::optional<Event> m =
      listener_.Await(0, [](const Event& e) { return e.kind == Event::kMessage; });
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->topic, Topic::Pattern("news.*"));
  EXPECT_EQ(m->channel, "news.eu");
  EXPECT_EQ(m->payload, "bonjour");
}

TEST_F(RedisUpstreamTest, BinaryChannelAndPayloadRoundTrip) {
  RedisServer server;
  const uint64_t epoch = Connect(server);
  const std::string channel("bin\0chan\r\n", 10);
  const std::string payload("\0\xff\x01 \r\n%s%b", 11);
  upstream_->Subscribe(Topic::Channel(channel), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel(channel)));

  // Published through our own publish connection, so both directions carry the bytes.
  PublishResult result;
  upstream_->Publish(channel, payload, result.Callback());
  absl::StatusOr<int64_t> receivers = result.Await();
  ASSERT_TRUE(receivers.ok()) << receivers.status();
  EXPECT_EQ(*receivers, 1);
  std::optional<Event> m =
      listener_.Await(0, [](const Event& e) { return e.kind == Event::kMessage; });
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->channel, channel);
  EXPECT_EQ(m->payload, payload);
}

TEST_F(RedisUpstreamTest, UnsubscribeConfirmsAndRedisForgets) {
  RedisServer server;
  const uint64_t epoch = Connect(server);
  upstream_->Subscribe(Topic::Channel("a"), epoch);
  upstream_->Subscribe(Topic::Pattern("p.*"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("a")));
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Pattern("p.*")));

  upstream_->Unsubscribe(Topic::Channel("a"), epoch);
  upstream_->Unsubscribe(Topic::Pattern("p.*"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kUnsubscribed, Topic::Channel("a")));
  ASSERT_TRUE(listener_.AwaitKind(Event::kUnsubscribed, Topic::Pattern("p.*")));
  EXPECT_EQ(server.NumSub("a"), 0);
  EXPECT_EQ(server.NumPat(), 0);

  // Back to zero subscriptions (hiredis leaves subscribe mode): a new one still works.
  const size_t mark = listener_.size();
  upstream_->Subscribe(Topic::Channel("a"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("a"), mark));
  EXPECT_EQ(server.Publish("a", "again"), 1);
  EXPECT_TRUE(
      listener_
          .Await(mark,
                 [](const Event& e) { return e.kind == Event::kMessage && e.payload == "again"; })
          .has_value());
}

TEST_F(RedisUpstreamTest, ConfirmationsComeInOrder) {
  RedisServer server;
  const uint64_t epoch = Connect(server);
  const std::vector<std::string> names = {"c1", "c2", "c3", "c4", "c5"};
  for (const std::string& n : names) upstream_->Subscribe(Topic::Channel(n), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("c5")));
  std::vector<std::string> confirmed;
  for (const Event& e : listener_.events()) {
    if (e.kind == Event::kSubscribed) confirmed.push_back(e.topic.name);
  }
  EXPECT_EQ(confirmed, names);
}

TEST_F(RedisUpstreamTest, StaleEpochIsIgnored) {
  RedisServer server;
  const uint64_t epoch = Connect(server);
  upstream_->Subscribe(Topic::Channel("stale"), epoch + 1);
  upstream_->Subscribe(Topic::Channel("fresh"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("fresh")));
  // Orders run in posting order on one strand: "stale" was dropped, not delayed.
  EXPECT_EQ(server.NumSub("stale"), 0);
  EXPECT_EQ(listener_.Count(Event::kSubscribed), 1);
}

TEST_F(RedisUpstreamTest, PublishReturnsReceiverCount) {
  RedisServer server;
  const uint64_t epoch = Connect(server);
  PublishResult none;
  upstream_->Publish("room", "x", none.Callback());
  absl::StatusOr<int64_t> r = none.Await();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 0);

  upstream_->Subscribe(Topic::Channel("room"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("room")));
  PublishResult one;
  upstream_->Publish("room", "y", one.Callback());
  r = one.Await();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 1);
  EXPECT_EQ(one.calls(), 1);
}

TEST_F(RedisUpstreamTest, PublishWhileRedisIsDownFailsFast) {
  RedisServer server;
  Connect(server);
  server.Kill();
  ASSERT_TRUE(WaitFor([&] { return !upstream_->connected(); }, kWait));
  PublishResult result;
  const absl::Time start = absl::Now();
  upstream_->Publish("c", "p", result.Callback());
  absl::StatusOr<int64_t> r = result.Await();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST_F(RedisUpstreamTest, PublishTimesOut) {
  RedisServer server;
  RedisUpstreamOptions options = Options(server.url());
  options.publish_timeout = absl::Milliseconds(100);
  StartUpstream(options);
  ASSERT_TRUE(WaitFor([&] { return upstream_->connected(); }, kWait));
  // Redis holds every client's commands (PUBLISH included) for a while.
  ASSERT_TRUE(server.Command({"CLIENT", "PAUSE", "1500", "ALL"}).ok());
  PublishResult result;
  upstream_->Publish("c", "p", result.Callback());
  EXPECT_EQ(result.Await().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(result.calls(), 1);
}

// The redis-server's process id, from INFO (the test server does not expose it).
pid_t RedisPid(const RedisServer& server) {
  absl::StatusOr<std::string> info = server.Command({"INFO", "server"});
  if (!info.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(*info, absl::ByAnyChar("\r\n"))) {
    int pid = 0;
    if (absl::ConsumePrefix(&line, "process_id:") && absl::SimpleAtoi(line, &pid)) return pid;
  }
  return -1;
}

TEST_F(RedisUpstreamTest, KeyedPublishIsMadeOncePerChannelAndKey) {
  RedisServer server;
  const uint64_t epoch = Connect(server);
  upstream_->Subscribe(Topic::Channel("room"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("room")));
  auto publish = [&](const std::string& channel, const std::string& payload,
                     const std::string& key) {
    PublishResult result;
    upstream_->PublishWithKey(channel, payload, key, result.Callback());
    return result.Await();
  };
  EXPECT_EQ(publish("room", "x", "k1").value_or(-2), 1);
  EXPECT_EQ(publish("room", "x again", "k1").value_or(-2), hub::Upstream::kAlreadyPublished);
  EXPECT_EQ(publish("room", "y", "k2").value_or(-2), 1);
  // The key is the channel's: another channel's k1 is another message.
  EXPECT_EQ(publish("lobby", "x", "k1").value_or(-2), 0);
  // Redis forgets the key after the window (10 minutes by default).
  absl::StatusOr<std::string> ttl = server.Command({"PTTL", "bridge:published:4:room:k1"});
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  int64_t ms = 0;
  ASSERT_TRUE(absl::SimpleAtoi(*ttl, &ms)) << *ttl;
  EXPECT_GT(ms, 0);
  EXPECT_LE(ms, absl::ToInt64Milliseconds(absl::Minutes(10)));

  ASSERT_TRUE(listener_.Await(0, [](const Event& e) { return e.payload == "y"; }));
  int delivered = 0;
  for (const Event& e : listener_.events()) delivered += e.kind == Event::kMessage;
  EXPECT_EQ(delivered, 2);
}

// The review's case: Redis froze, the publish was answered DEADLINE_EXCEEDED, and Redis
// made it once it resumed. The client's retry with the same key is not made again.
TEST_F(RedisUpstreamTest, KeyedRetryAfterADeadlineIsDeliveredOnce) {
  RedisServer server;
  RedisUpstreamOptions options = Options(server.url());
  options.publish_timeout = absl::Milliseconds(200);
  StartUpstream(options);
  const uint64_t epoch = listener_.AwaitConnected();
  ASSERT_TRUE(WaitFor([&] { return upstream_->connected(); }, kWait));
  upstream_->Subscribe(Topic::Channel("orders"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("orders")));
  const pid_t pid = RedisPid(server);
  ASSERT_GT(pid, 0);

  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  PublishResult first;
  upstream_->PublishWithKey("orders", "order 1", "order-1", first.Callback());
  const absl::Status frozen = first.Await().status();
  ASSERT_EQ(::kill(pid, SIGCONT), 0);
  EXPECT_EQ(frozen.code(), absl::StatusCode::kDeadlineExceeded) << frozen;

  // Retried as a client would, until the publish connection is back.
  absl::StatusOr<int64_t> retry = absl::UnavailableError("not tried");
  EXPECT_TRUE(WaitFor(
      [&] {
        PublishResult result;
        upstream_->PublishWithKey("orders", "order 1", "order-1", result.Callback());
        retry = result.Await();
        return retry.status().code() != absl::StatusCode::kUnavailable;
      },
      kWait));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(*retry, hub::Upstream::kAlreadyPublished);

  // Everything before the marker has arrived: the order came once.
  EXPECT_EQ(server.Publish("orders", "marker"), 1);
  ASSERT_TRUE(listener_.Await(0, [](const Event& e) { return e.payload == "marker"; }));
  int orders = 0;
  for (const Event& e : listener_.events()) orders += e.payload == "order 1";
  EXPECT_EQ(orders, 1);
}

TEST_F(RedisUpstreamTest, StalledPublishConnectionIsCappedThenDroppedAndReconnected) {
  std::vector<std::unique_ptr<PublishResult>> held;
  PublishResult over, down, after;
  // Even when an assertion returns early, no answer may outlive the results it goes to.
  absl::Cleanup stop = [this] {
    if (upstream_) upstream_->Stop();
  };
  RedisServer server;
  RedisUpstreamOptions options = Options(server.url());
  options.publish_timeout = absl::Seconds(1);
  options.max_publishes_in_flight = 3;
  StartUpstream(options);
  ASSERT_NE(listener_.AwaitConnected(), 0u);
  ASSERT_TRUE(WaitFor([&] { return upstream_->connected(); }, kWait));

  // A Redis that stays connected and stops reading, as behind a partition without reset.
  const pid_t pid = RedisPid(server);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  absl::Cleanup resume = [pid] { ::kill(pid, SIGCONT); };

  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<PublishResult>());
    upstream_->Publish("c", std::string(1000, 'x'), held.back()->Callback());
  }
  // Past the cap: refused at once, from this thread, while the three wait for Redis.
  upstream_->Publish("c", "p", over.Callback());
  ASSERT_EQ(over.calls(), 1);
  absl::StatusOr<int64_t> r = over.Await();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "too many publishes")) << r.status();
  EXPECT_EQ(upstream_->Stats().publishes_rejected, 1u);

  // The first timeout to run (the io threads may deliver them in any order) answers
  // DEADLINE_EXCEEDED and drops the stalled connection, which answers the other two.
  int timed_out = 0;
  int reset = 0;
  for (auto& result : held) {
    absl::StatusOr<int64_t> answer = result->Await();
    if (answer.status().code() == absl::StatusCode::kDeadlineExceeded) {
      ++timed_out;
    } else if (answer.status().code() == absl::StatusCode::kUnavailable &&
               absl::StrContains(answer.status().message(), "connection reset")) {
      ++reset;
    } else {
      ADD_FAILURE() << answer.status();
    }
    EXPECT_EQ(result->calls(), 1);
  }
  EXPECT_EQ(timed_out, 1);
  EXPECT_EQ(reset, 2);
  ASSERT_TRUE(WaitFor([&] { return !upstream_->connected(); }, kWait));
  EXPECT_EQ(upstream_->Stats().publish_resets, 1u);
  EXPECT_GE(upstream_->Stats().disconnects, 1u);

  // The cap was given back: now a publish fails for the connection, not for the cap.
  upstream_->Publish("c", "p", down.Callback());
  r = down.Await();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_FALSE(absl::StrContains(r.status().message(), "too many publishes")) << r.status();

  // Redis comes back: the publish connection reconnects and publishes go through.
  std::move(resume).Invoke();
  ASSERT_TRUE(WaitFor([&] { return upstream_->connected(); }, kWait));
  upstream_->Publish("c", "p", after.Callback());
  r = after.Await();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 0);
  // The subscriber connection was never touched.
  EXPECT_EQ(listener_.Count(Event::kDisconnected), 0);
}

// Each connection keeps its own error; Stats() reports the later of the two.
TEST_F(RedisUpstreamTest, LastErrorIsTheMostRecentOfEitherConnection) {
  PublishResult stalled;
  absl::Cleanup stop = [this] {
    if (upstream_) upstream_->Stop();
  };
  RedisServer server;
  RedisUpstreamOptions options = Options(server.url());
  options.publish_timeout = absl::Milliseconds(300);
  StartUpstream(options);
  ASSERT_NE(listener_.AwaitConnected(), 0u);
  // Both connections lose Redis: each records UNAVAILABLE.
  server.Kill();
  ASSERT_TRUE(listener_.Await(0, [](const Event& e) { return e.kind == Event::kDisconnected; }));
  server.Start();
  ASSERT_NE(listener_.AwaitConnected(1), 0u);
  ASSERT_TRUE(WaitFor([&] { return upstream_->connected(); }, kWait));
  EXPECT_TRUE(absl::StartsWith(upstream_->Stats().last_error, "UNAVAILABLE"))
      << upstream_->Stats().last_error;

  // Then only the publish connection fails: its error is the latest.
  const pid_t pid = RedisPid(server);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  absl::Cleanup resume = [pid] { ::kill(pid, SIGCONT); };
  upstream_->Publish("c", "p", stalled.Callback());
  EXPECT_EQ(stalled.Await().status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(WaitFor([&] { return upstream_->Stats().publish_resets == 1; }, kWait));
  const RedisUpstreamStats stats = upstream_->Stats();
  EXPECT_TRUE(absl::StartsWith(stats.last_error, "DEADLINE_EXCEEDED: stalled")) << stats.last_error;
  EXPECT_TRUE(stats.subscriber_connected);
}

TEST_F(RedisUpstreamTest, PublishBytesInFlightAreCapped) {
  PublishResult big, small, again;
  absl::Cleanup stop = [this] {
    if (upstream_) upstream_->Stop();
  };
  RedisServer server;
  RedisUpstreamOptions options = Options(server.url());
  options.max_publish_bytes_in_flight = 1000;
  StartUpstream(options);
  ASSERT_TRUE(WaitFor([&] { return upstream_->connected(); }, kWait));
  const pid_t pid = RedisPid(server);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  absl::Cleanup resume = [pid] { ::kill(pid, SIGCONT); };

  // Alone in flight, one publish over the byte bound still goes; the next waits for it.
  upstream_->Publish("c", std::string(4000, 'x'), big.Callback());
  upstream_->Publish("c", "p", small.Callback());
  ASSERT_EQ(small.calls(), 1);
  EXPECT_EQ(small.Await().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(big.calls(), 0);

  std::move(resume).Invoke();
  absl::StatusOr<int64_t> r = big.Await();
  ASSERT_TRUE(r.ok()) << r.status();
  upstream_->Publish("c", "p", again.Callback());
  r = again.Await();
  ASSERT_TRUE(r.ok()) << r.status();
}

TEST_F(RedisUpstreamTest, QuickDropsBackOffInsteadOfLooping) {
  RedisServer server;
  RedisUpstreamOptions options = Options(server.url());
  options.backoff_initial = absl::Milliseconds(1);
  options.backoff_max = absl::Seconds(1);
  options.backoff_reset_after = absl::Minutes(1);
  StartUpstream(options);
  // Redis drops the subscriber connection right after each (re)connect: every reconnect
  // must wait longer than the one before, not start again from backoff_initial.
  size_t mark = 0;
  for (int i = 0; i < 4; ++i) {
    const uint64_t epoch = listener_.AwaitConnected(mark);
    ASSERT_NE(epoch, 0u) << "round " << i;
    mark = listener_.size();
    upstream_->Subscribe(Topic::Channel("drop"), epoch);
    ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("drop"), mark));
    ASSERT_TRUE(server.Command({"CLIENT", "KILL", "TYPE", "pubsub"}).ok());
    ASSERT_TRUE(
        listener_.Await(mark, [](const Event& e) { return e.kind == Event::kDisconnected; }));
    mark = listener_.size();
  }
  EXPECT_GE(upstream_->Stats().subscriber_retry_ceiling, absl::Milliseconds(8))
      << upstream_->Stats().subscriber_retry_ceiling;
  EXPECT_NE(listener_.AwaitConnected(mark), 0u);
}

// A Redis user limited to the channels app:* (and the pattern app:*).
class RedisAclTest : public RedisUpstreamTest {
 protected:
  RedisAclTest() : server_({"user app on >pw ~* resetchannels &app:* +@all"}) {}

  uint64_t ConnectAsApp(bool probe = false) {
    const std::string url = "redis://app:pw@127.0.0.1:" + std::to_string(server_.port());
    RedisUpstreamOptions options = probe ? ProbeOptions(url) : Options(url);
    absl::StatusOr<std::unique_ptr<RedisUpstream>> upstream = RedisUpstream::Create(options, io_);
    EXPECT_TRUE(upstream.ok()) << upstream.status();
    if (!upstream.ok()) return 0;
    upstream_ = *std::move(upstream);
    upstream_->SetListener(&listener_);
    upstream_->Start();
    return listener_.AwaitConnected();
  }

  RedisServer server_;
};

TEST_F(RedisAclTest, RefusedSubscribeIsBlamedAndNotRepeated) {
  const uint64_t first = ConnectAsApp();
  ASSERT_NE(first, 0u);
  // Pipelined, as the hub sends them: the refusal is the second reply.
  upstream_->Subscribe(Topic::Channel("app:a"), first);
  upstream_->Subscribe(Topic::Channel("forbidden"), first);
  upstream_->Subscribe(Topic::Channel("app:b"), first);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("app:a")));
  // hiredis closes the connection on the NOPERM.
  ASSERT_TRUE(listener_.Await(0, [](const Event& e) { return e.kind == Event::kDisconnected; }));
  const size_t mark = listener_.size();
  const uint64_t second = listener_.AwaitConnected(mark);
  ASSERT_NE(second, 0u);
  EXPECT_EQ(upstream_->Stats().subscribes_refused, 1u);

  // The hub resubscribes everything it wants: the refused topic is answered from memory,
  // and the others go live, on a connection that now stays up.
  for (const char* name : {"app:a", "forbidden", "app:b"}) {
    upstream_->Subscribe(Topic::Channel(name), second);
  }
  std::vector<std::pair<Topic, absl::Status>> refused = listener_.AwaitRefused(1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].first, Topic::Channel("forbidden"));
  EXPECT_EQ(refused[0].second.code(), absl::StatusCode::kPermissionDenied) << refused[0].second;
  // Worded by SubscribeRefusedError, with Redis' reply.
  EXPECT_TRUE(absl::StartsWith(refused[0].second.message(),
                               "redis refused to subscribe channel forbidden: NOPERM"))
      << refused[0].second;
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("app:a"), mark));
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("app:b"), mark));
  // One more round trip on the same connection, then count: no second disconnect.
  upstream_->Subscribe(Topic::Pattern("app:*"), second);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Pattern("app:*"), mark));
  EXPECT_EQ(server_.Publish("app:a", "still here"), 2);
  EXPECT_TRUE(listener_
                  .Await(mark,
                         [](const Event& e) {
                           return e.kind == Event::kMessage && e.payload == "still here";
                         })
                  .has_value());
  EXPECT_EQ(listener_.Count(Event::kDisconnected), 1);
  EXPECT_EQ(upstream_->Stats().disconnects, 1u);
  EXPECT_EQ(server_.NumSub("forbidden"), 0);
}

TEST_F(RedisAclTest, RefusedPatternIsBlamed) {
  const uint64_t first = ConnectAsApp();
  ASSERT_NE(first, 0u);
  upstream_->Subscribe(Topic::Channel("app:a"), first);
  upstream_->Subscribe(Topic::Channel("app:b"), first);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("app:b")));
  // An unsubscribe answered before the refusal: the refusal is still the pattern's.
  upstream_->Unsubscribe(Topic::Channel("app:a"), first);
  upstream_->Subscribe(Topic::Pattern("*"), first);
  ASSERT_TRUE(listener_.Await(0, [](const Event& e) { return e.kind == Event::kDisconnected; }));
  const size_t mark = listener_.size();
  const uint64_t second = listener_.AwaitConnected(mark);
  ASSERT_NE(second, 0u);
  upstream_->Subscribe(Topic::Pattern("*"), second);
  upstream_->Subscribe(Topic::Channel("app:a"), second);
  std::vector<std::pair<Topic, absl::Status>> refused = listener_.AwaitRefused(1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].first, Topic::Pattern("*"));
  EXPECT_TRUE(listener_.AwaitKind(Event::kUnsubscribed, Topic::Channel("app:a")));
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("app:a"), mark));
  EXPECT_EQ(listener_.Count(Event::kDisconnected), 1);
}

TEST_F(RedisUpstreamTest, ReconnectsWithANewEpochAfterRedisRestarts) {
  RedisServer server;
  const uint64_t first = Connect(server);
  upstream_->Subscribe(Topic::Channel("live"), first);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("live")));

  const size_t mark = listener_.size();
  server.Kill();
  ASSERT_TRUE(listener_.Await(mark, [](const Event& e) { return e.kind == Event::kDisconnected; }));
  server.Start();
  const uint64_t second = listener_.AwaitConnected(mark);
  ASSERT_NE(second, 0u);
  EXPECT_NE(second, first);
  EXPECT_EQ(listener_.Count(Event::kDisconnected), 1);

  // An order for the old connection is ignored; the new epoch resubscribes.
  upstream_->Subscribe(Topic::Channel("old"), first);
  upstream_->Subscribe(Topic::Channel("live"), second);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("live"), mark));
  EXPECT_EQ(server.NumSub("old"), 0);
  EXPECT_EQ(server.Publish("live", "back"), 1);
  EXPECT_TRUE(
      listener_
          .Await(mark,
                 [](const Event& e) { return e.kind == Event::kMessage && e.payload == "back"; })
          .has_value());
  ASSERT_TRUE(WaitFor([&] { return upstream_->connected(); }, kWait));
  PublishResult result;
  upstream_->Publish("live", "via-us", result.Callback());
  absl::StatusOr<int64_t> r = result.Await();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 1);
}

TEST_F(RedisUpstreamTest, AuthenticatesWithThePassword) {
  RedisServer server({"requirepass secret"});
  StartUpstream(Options("redis://:secret@127.0.0.1:" + std::to_string(server.port())));
  const uint64_t epoch = listener_.AwaitConnected();
  ASSERT_NE(epoch, 0u);
  upstream_->Subscribe(Topic::Channel("auth"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("auth")));
  EXPECT_EQ(server.Publish("auth", "ok"), 1);
}

TEST_F(RedisUpstreamTest, AuthenticatesWithUserAndPassword) {
  RedisServer server({"requirepass secret"});
  StartUpstream(Options("redis://default:secret@127.0.0.1:" + std::to_string(server.port())));
  EXPECT_NE(listener_.AwaitConnected(), 0u);
}

TEST_F(RedisUpstreamTest, BadPasswordKeepsRetryingAndNeverConnects) {
  RedisServer server({"requirepass secret"});
  StartUpstream(Options("redis://:wrong@127.0.0.1:" + std::to_string(server.port())));
  ASSERT_TRUE(WaitFor([&] { return upstream_->Stats().connect_failures >= 6; }, kWait));
  const RedisUpstreamStats stats = upstream_->Stats();
  EXPECT_NE(stats.last_error.find("WRONGPASS"), std::string::npos) << stats.last_error;
  EXPECT_FALSE(stats.subscriber_connected);
  EXPECT_FALSE(upstream_->connected());
  EXPECT_EQ(listener_.Count(Event::kConnected), 0);
}

TEST_F(RedisUpstreamTest, NoPasswordAgainstRequirepassNeverConnects) {
  RedisServer server({"requirepass secret"});
  StartUpstream(Options(server.url()));
  ASSERT_TRUE(WaitFor([&] { return upstream_->Stats().connect_failures >= 2; }, kWait));
  EXPECT_NE(upstream_->Stats().last_error.find("NOAUTH"), std::string::npos)
      << upstream_->Stats().last_error;
  EXPECT_EQ(listener_.Count(Event::kConnected), 0);
}

TEST_F(RedisUpstreamTest, UnixSocketWithDatabase) {
  RedisServer server;
  StartUpstream(Options("unix://" + server.unix_socket() + "?db=2"));
  const uint64_t epoch = listener_.AwaitConnected();
  ASSERT_NE(epoch, 0u);
  upstream_->Subscribe(Topic::Channel("sock"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("sock")));
  EXPECT_EQ(server.Publish("sock", "via unix"), 1);
  ASSERT_TRUE(WaitFor([&] { return upstream_->connected(); }, kWait));
}

TEST_F(RedisUpstreamTest, KeepsRetryingUntilRedisAppears) {
  RedisServer server;
  server.Stop();
  StartUpstream(Options(server.url()));
  ASSERT_TRUE(WaitFor([&] { return upstream_->Stats().connect_failures >= 2; }, kWait));
  server.Start();
  EXPECT_NE(listener_.AwaitConnected(), 0u);
  EXPECT_EQ(listener_.Count(Event::kDisconnected), 0);
}

TEST_F(RedisUpstreamTest, StopAnswersPendingPublishesAndSilencesTheListener) {
  RedisServer server;
  const uint64_t epoch = Connect(server);
  upstream_->Subscribe(Topic::Channel("s"), epoch);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("s")));
  // Held by Redis, so they are still pending when Stop comes.
  ASSERT_TRUE(server.Command({"CLIENT", "PAUSE", "2000", "ALL"}).ok());
  std::vector<std::unique_ptr<PublishResult>> results;
  for (int i = 0; i < 5; ++i) {
    results.push_back(std::make_unique<PublishResult>());
    upstream_->Publish("s", "pending", results.back()->Callback());
  }
  upstream_->Stop();
  for (auto& result : results) {
    absl::StatusOr<int64_t> r = result->Await();
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    EXPECT_EQ(result->calls(), 1);
  }
  const size_t events = listener_.size();
  // After Stop: publishes fail at once, orders are ignored, the listener hears nothing.
  PublishResult late;
  upstream_->Publish("s", "late", late.Callback());
  EXPECT_EQ(late.Await().status().code(), absl::StatusCode::kUnavailable);
  upstream_->Subscribe(Topic::Channel("t"), epoch);
  upstream_.reset();
  EXPECT_EQ(listener_.size(), events);
}

TEST_F(RedisUpstreamTest, SilentServerTimesOutAndIsRetried) {
  // A listening socket nobody accepts from: the kernel completes the TCP connect, and
  // the handshake's PING is never answered.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  RedisUpstreamOptions options =
      Options("redis://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  options.connect_timeout = absl::Milliseconds(100);
  StartUpstream(options);
  EXPECT_TRUE(WaitFor([&] { return upstream_->Stats().connect_failures >= 3; }, kWait));
  EXPECT_NE(upstream_->Stats().last_error.find("DEADLINE_EXCEEDED"), std::string::npos)
      << upstream_->Stats().last_error;
  EXPECT_EQ(listener_.Count(Event::kConnected), 0);
  upstream_->Stop();
  ::close(fd);
}

TEST_F(RedisUpstreamTest, StopWhileConnectingAndDestroy) {
  RedisServer server;
  server.Stop();
  StartUpstream(Options(server.url()));
  upstream_->Stop();
  upstream_.reset();
  EXPECT_EQ(listener_.Count(Event::kConnected), 0);
}

// The probe proves delivery while Redis answers, and loses a probe once Redis freezes
// (SIGSTOP: connections stay open, nothing is answered): the subscriber connection is
// then dropped within interval + timeout, and reconnects once Redis runs again.
TEST_F(RedisUpstreamTest, FrozenRedisLosesAProbeAndDropsTheSubscriberConnection) {
  RedisServer server;
  StartUpstream(ProbeOptions(server.url()));
  const uint64_t first = listener_.AwaitConnected();
  ASSERT_NE(first, 0u);
  upstream_->Subscribe(Topic::Channel("news"), first);
  // Matches the probe channel too: its probes must still reach no one.
  upstream_->Subscribe(Topic::Pattern("*"), first);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("news")));
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Pattern("*")));
  ASSERT_TRUE(WaitFor(
      [&] {
        const RedisUpstreamStats stats = upstream_->Stats();
        return stats.probes_sent >= 3 && stats.probe_last_round_trip < kProbeTimeout;
      },
      kWait));
  EXPECT_EQ(upstream_->Stats().probes_lost, 0u);

  size_t mark = listener_.size();
  server.Pause();
  absl::Cleanup resume = [&server] { server.Resume(); };
  const absl::Time frozen = absl::Now();
  ASSERT_TRUE(listener_.Await(mark, [](const Event& e) { return e.kind == Event::kDisconnected; }));
  const absl::Duration detected = absl::Now() - frozen;
  // A probe goes out at most one interval after the freeze, and is lost a timeout later.
  EXPECT_LE(detected, kProbeInterval + kProbeTimeout + absl::Milliseconds(500)) << detected;
  RedisUpstreamStats stats = upstream_->Stats();
  EXPECT_EQ(stats.probes_lost, 1u);
  EXPECT_FALSE(stats.subscriber_connected);
  EXPECT_NE(stats.last_error.find("delivery probe"), std::string::npos) << stats.last_error;
  // Reconnecting to the frozen Redis fails its handshake (connect_timeout), so the
  // upstream stays disconnected.
  ASSERT_TRUE(WaitFor([&] { return upstream_->Stats().connect_failures >= 1; }, kWait));
  EXPECT_EQ(listener_.Count(Event::kConnected), 1);

  mark = listener_.size();
  std::move(resume).Invoke();
  const uint64_t second = listener_.AwaitConnected(mark);
  ASSERT_NE(second, 0u);
  upstream_->Subscribe(Topic::Channel("news"), second);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("news"), mark));
  EXPECT_GE(server.Publish("news", "after"), 1);
  EXPECT_TRUE(
      listener_
          .Await(mark,
                 [](const Event& e) { return e.kind == Event::kMessage && e.payload == "after"; })
          .has_value());
  // Probes come back on the new connection.
  const uint64_t sent = upstream_->Stats().probes_sent;
  ASSERT_TRUE(WaitFor([&] { return upstream_->Stats().probes_sent >= sent + 3; }, kWait));
  EXPECT_EQ(upstream_->Stats().probes_lost, 1u);
  for (const Event& e : listener_.events()) {
    if (e.kind == Event::kMessage) {
      EXPECT_FALSE(IsProbeChannel(e.channel)) << e.channel;
    }
  }
}

// CLIENT PAUSE holds every client's commands, the probe's PUBLISH included: lost too.
TEST_F(RedisUpstreamTest, ClientPauseLosesAProbe) {
  RedisServer server;
  StartUpstream(ProbeOptions(server.url()));
  ASSERT_NE(listener_.AwaitConnected(), 0u);
  ASSERT_TRUE(WaitFor([&] { return upstream_->Stats().probes_sent >= 2; }, kWait));
  size_t mark = listener_.size();
  ASSERT_TRUE(server.Command({"CLIENT", "PAUSE", "3000", "ALL"}).ok());
  const absl::Time paused = absl::Now();
  ASSERT_TRUE(listener_.Await(mark, [](const Event& e) { return e.kind == Event::kDisconnected; }));
  const absl::Duration detected = absl::Now() - paused;
  EXPECT_LE(detected, kProbeInterval + kProbeTimeout + absl::Milliseconds(500)) << detected;
  EXPECT_EQ(upstream_->Stats().probes_lost, 1u);
  // Once the pause ends, the connection is back and probes return again.
  mark = listener_.size();
  ASSERT_NE(listener_.AwaitConnected(mark), 0u);
  const uint64_t sent = upstream_->Stats().probes_sent;
  ASSERT_TRUE(WaitFor([&] { return upstream_->Stats().probes_sent >= sent + 2; }, kWait));
  EXPECT_EQ(upstream_->Stats().probes_lost, 1u);
}

// A client cannot subscribe a probe channel: its messages would never reach it, and its
// UNSUBSCRIBE would end the probe's own subscription.
TEST_F(RedisUpstreamTest, ProbeChannelsAreRefusedToClients) {
  RedisServer server;
  const uint64_t epoch = Connect(server);
  const Topic probe = Topic::Channel(std::string(kProbeChannelPrefix) + "guess");
  upstream_->Subscribe(probe, epoch);
  std::vector<std::pair<Topic, absl::Status>> refused = listener_.AwaitRefused(1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].first, probe);
  EXPECT_EQ(refused[0].second.code(), absl::StatusCode::kPermissionDenied) << refused[0].second;
  EXPECT_EQ(server.NumSub(probe.name), 0);
}

// A Redis user whose ACL lacks the probe channels: the probe's SUBSCRIBE is refused once,
// the probe turns itself off, and the connection then stays up; no topic is blamed.
TEST_F(RedisAclTest, ProbeRefusedByAnAclTurnsItselfOff) {
  const uint64_t first = ConnectAsApp(/*probe=*/true);
  ASSERT_NE(first, 0u);
  ASSERT_TRUE(listener_.Await(0, [](const Event& e) { return e.kind == Event::kDisconnected; }));
  const size_t mark = listener_.size();
  const uint64_t second = listener_.AwaitConnected(mark);
  ASSERT_NE(second, 0u);
  upstream_->Subscribe(Topic::Channel("app:a"), second);
  ASSERT_TRUE(listener_.AwaitKind(Event::kSubscribed, Topic::Channel("app:a"), mark));
  EXPECT_EQ(server_.Publish("app:a", "hi"), 1);
  EXPECT_TRUE(
      listener_
          .Await(mark,
                 [](const Event& e) { return e.kind == Event::kMessage && e.payload == "hi"; })
          .has_value());
  EXPECT_EQ(upstream_->Stats().subscribes_refused, 0u);
  EXPECT_EQ(upstream_->Stats().probes_lost, 0u);
  EXPECT_EQ(listener_.Count(Event::kDisconnected), 1);
}

}  // namespace
}  // namespace bridge::redis
