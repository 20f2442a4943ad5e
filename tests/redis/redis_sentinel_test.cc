// RedisUpstream on a real Sentinel setup (tests/support/redis_sentinel.h): it finds the
// master through the sentinels, and follows it when it moves.
#include "tests/support/redis_sentinel.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/hub/upstream.h"
#include "bridge/redis/redis_upstream.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"

namespace bridge::redis {
namespace {

using ::bridge::hub::Topic;
using ::bridge::testing::RedisSentinelSetup;
using ::bridge::testing::WaitFor;

constexpr absl::Duration kWait = absl::Seconds(10);
// Killing a master: 1 s until the sentinels see it down, then the vote and promotion.
constexpr absl::Duration kFailover = absl::Seconds(30);

struct Event {
  enum Kind { kConnected, kDisconnected, kSubscribed, kMessage } kind;
  uint64_t epoch = 0;
  Topic topic;
  std::string payload;
};

// Records the upstream's calls; tests wait on them with a deadline.
class RecordingListener : public hub::UpstreamListener {
 public:
  void OnUpstreamConnected(uint64_t epoch) override {
    Add({Event::kConnected, epoch, Topic(), ""});
  }
  void OnUpstreamDisconnected() override { Add({Event::kDisconnected, 0, Topic(), ""}); }
  void OnSubscribeConfirmed(const Topic& topic) override {
    Add({Event::kSubscribed, 0, topic, ""});
  }
  void OnUnsubscribeConfirmed(const Topic&) override {}
  void OnMessage(const Topic& topic, std::string_view, std::string_view payload) override {
    Add({Event::kMessage, 0, topic, std::string(payload)});
  }
  void OnSubscribeRefused(const Topic&, const absl::Status&) override {}
  // A single-server upstream loses its topics only with its connection.
  void OnTopicsLost(const std::vector<Topic>&) override {}

  // The first event from index `from` on of `kind` (and `payload`, for messages).
  std::optional<Event> Await(size_t from, Event::Kind kind, const std::string& payload = "",
                             absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    std::optional<Event> found;
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (size_t i = from; i < events_.size(); ++i) {
        if (events_[i].kind == kind && (payload.empty() || events_[i].payload == payload)) {
          found = events_[i];
          return true;
        }
      }
      return false;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    return found;
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return events_.size();
  }

 private:
  void Add(Event e) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(e));
  }

  mutable absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
};

class RedisSentinelTest : public ::testing::Test {
 protected:
  explicit RedisSentinelTest(RedisSentinelSetup::Options options = {})
      : setup_(std::move(options)) {}

  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (upstream_) upstream_->Stop();
    upstream_.reset();
    work_.reset();
    thread_.join();
  }

  // Against setup_, unless `url` names other sentinels.
  void Start(RedisUpstreamOptions options, const std::string& url = "") {
    options.url = url.empty() ? setup_.url() : url;
    options.connect_timeout = absl::Seconds(2);
    options.backoff_initial = absl::Milliseconds(10);
    options.backoff_max = absl::Milliseconds(500);
    absl::StatusOr<std::unique_ptr<RedisUpstream>> upstream = RedisUpstream::Create(options, io_);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = *std::move(upstream);
    upstream_->SetListener(&listener_);
    upstream_->Start();
  }

  // Waits for a (new) subscriber connection from event `from` on, subscribes `channel` on
  // it as the hub would, and waits for both connections; returns the epoch.
  uint64_t ConnectAndSubscribe(size_t from, const std::string& channel,
                               absl::Duration timeout = kWait) {
    std::optional<Event> connected = listener_.Await(from, Event::kConnected, "", timeout);
    if (!connected.has_value()) {
      ADD_FAILURE() << "no subscriber connection";
      return 0;
    }
    const size_t mark = listener_.size();
    upstream_->Subscribe(Topic::Channel(channel), connected->epoch);
    EXPECT_TRUE(listener_.Await(mark, Event::kSubscribed).has_value());
    EXPECT_TRUE(WaitFor([&] { return upstream_->connected(); }, kWait));
    return connected->epoch;
  }

  // Publishes through the upstream's own publish connection.
  absl::StatusOr<int64_t> Publish(const std::string& channel, const std::string& payload) {
    absl::Mutex mu;
    std::optional<absl::StatusOr<int64_t>> result;
    upstream_->Publish(channel, payload, [&](absl::StatusOr<int64_t> r) {
      absl::MutexLock lock(&mu);
      result = std::move(r);
    });
    absl::MutexLock lock(&mu);
    auto done = [&] { return result.has_value(); };
    if (!mu.AwaitWithTimeout(absl::Condition(&done), kWait)) {
      return absl::DeadlineExceededError("test: no publish answer");
    }
    return *result;
  }

  // A message published on node `node` reaches the listener.
  void ExpectDelivered(int node, const std::string& channel, const std::string& payload) {
    const size_t mark = listener_.size();
    EXPECT_EQ(setup_.node(node).Publish(channel, payload), 1);
    EXPECT_TRUE(listener_.Await(mark, Event::kMessage, payload).has_value()) << payload;
  }

  RedisSentinelSetup setup_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread thread_;
  RecordingListener listener_;
  std::unique_ptr<RedisUpstream> upstream_;
};

TEST_F(RedisSentinelTest, FindsTheMasterThroughTheSentinelsAndUsesIt) {
  Start(RedisUpstreamOptions{});
  ConnectAndSubscribe(0, "news");
  EXPECT_EQ(upstream_->sentinel_master(), absl::StrCat("127.0.0.1:", setup_.node(0).port()));
  // Subscribed on the master, not on the replica (which sees the master's publishes too).
  EXPECT_EQ(setup_.node(0).NumSub("news"), 1);
  EXPECT_EQ(setup_.node(1).NumSub("news"), 0);
  ExpectDelivered(0, "news", "hello");

  // Our own publishes go to the master as well: the replica would refuse nothing, but
  // its subscribers alone would hear them.
  const size_t mark = listener_.size();
  absl::StatusOr<int64_t> receivers = Publish("news", "from-bridge");
  ASSERT_TRUE(receivers.ok()) << receivers.status();
  EXPECT_EQ(*receivers, 1);
  EXPECT_TRUE(listener_.Await(mark, Event::kMessage, "from-bridge").has_value());
}

TEST_F(RedisSentinelTest, SentinelsAreAskedInTurnWhenTheFirstIsDown) {
  // The first sentinel listed is not there: the next one answers.
  std::string url = setup_.url();
  url.insert(std::string("redis+sentinel://").size(),
             absl::StrCat("127.0.0.1:", testing::FreePort(), ","));
  Start(RedisUpstreamOptions{}, url);
  ConnectAndSubscribe(0, "turns");
  ExpectDelivered(0, "turns", "reached");
}

TEST_F(RedisSentinelTest, KilledMasterIsReplacedAndBothConnectionsFollow) {
  Start(RedisUpstreamOptions{});
  ConnectAndSubscribe(0, "orders");
  ExpectDelivered(0, "orders", "before");

  const size_t mark = listener_.size();
  const absl::Time killed = absl::Now();
  setup_.node(0).Kill();
  ASSERT_TRUE(listener_.Await(mark, Event::kDisconnected).has_value());
  // The replica is promoted; Bridge connects to it and subscribes again.
  ConnectAndSubscribe(mark, "orders", kFailover);
  const absl::Duration moved = absl::Now() - killed;
  EXPECT_EQ(upstream_->sentinel_master(), absl::StrCat("127.0.0.1:", setup_.node(1).port()));
  EXPECT_EQ(setup_.node(1).NumSub("orders"), 1);
  ExpectDelivered(1, "orders", "after");
  // And publishing works on the new master.
  absl::StatusOr<int64_t> receivers = Publish("orders", "published-after");
  ASSERT_TRUE(receivers.ok()) << receivers.status();
  EXPECT_EQ(*receivers, 1);
  std::printf("kill -9 of the master to resubscribed on the new one: %s\n",
              absl::FormatDuration(moved).c_str());
}

TEST_F(RedisSentinelTest, ForcedFailoverMovesBothConnectionsOffTheDemotedMaster) {
  Start(RedisUpstreamOptions{});
  ConnectAndSubscribe(0, "prices");
  ExpectDelivered(0, "prices", "before");

  const size_t mark = listener_.size();
  const absl::Time asked = absl::Now();
  ASSERT_TRUE(setup_.ForceFailover().ok());
  ConnectAndSubscribe(mark, "prices", kFailover);
  std::printf("SENTINEL FAILOVER to resubscribed on the new master: %s\n",
              absl::FormatDuration(absl::Now() - asked).c_str());
  ASSERT_TRUE(setup_.WaitForMaster(1));
  EXPECT_EQ(upstream_->sentinel_master(), absl::StrCat("127.0.0.1:", setup_.node(1).port()));
  ExpectDelivered(1, "prices", "after");
  // Nothing of Bridge's stays on the old master, alive as it is.
  EXPECT_TRUE(WaitFor([&] { return setup_.node(0).NumSub("prices") == 0; }, kWait));
  absl::StatusOr<int64_t> receivers = Publish("prices", "published-after");
  ASSERT_TRUE(receivers.ok()) << receivers.status();
  EXPECT_EQ(*receivers, 1);
}

// Without +switch-master (an event missed: the event connection down at the time, or a
// sentinel reconfigured by hand), asking the sentinels again is what moves Bridge. The
// old master keeps running as a master, with Bridge's connections, until the sentinels
// make it a replica some seconds later (and then close its clients); Bridge must have
// left it before that.
TEST_F(RedisSentinelTest, AskingAgainAloneFollowsAFailoverWhoseEventWasMissed) {
  RedisUpstreamOptions options;
  options.sentinel_events = false;
  options.sentinel_refresh_interval = absl::Seconds(1);
  Start(options);
  ConnectAndSubscribe(0, "quiet");

  const size_t mark = listener_.size();
  ASSERT_TRUE(setup_.ForceFailover().ok());
  ASSERT_TRUE(
      WaitFor([&] { return setup_.MasterPortBySentinel(0) == setup_.node(1).port(); }, kFailover));
  const absl::Time named = absl::Now();
  ConnectAndSubscribe(mark, "quiet", absl::Seconds(5));
  const absl::Duration moved = absl::Now() - named;
  // Bridge left a node that still says it is master: no closed connection and no ROLE
  // check told it to, only the sentinels' answer.
  EXPECT_EQ(setup_.Role(0), "master");
  EXPECT_EQ(setup_.node(1).NumSub("quiet"), 1);
  EXPECT_LT(moved, absl::Seconds(3));
  ExpectDelivered(1, "quiet", "found");
  std::printf("+switch-master missed: on the new master %s after the sentinels named it\n",
              absl::FormatDuration(moved).c_str());
}

// A sentinel's answer may be stale: a node that says it is not the master is never used.
TEST_F(RedisSentinelTest, ANodeThatSaysItIsNoMasterIsNotUsed) {
  // Swap the roles behind the sentinels' back. They go on naming node 0 for a while: they
  // read a node's role from INFO every 10 s, and act on a change only after some more.
  auto swap = [&](int master, int replica) {
    ASSERT_TRUE(setup_.node(master).Command({"REPLICAOF", "NO", "ONE"}).ok());
    ASSERT_TRUE(setup_.node(replica)
                    .Command({"REPLICAOF", "127.0.0.1", std::to_string(setup_.node(master).port())})
                    .ok());
  };
  swap(1, 0);
  Start(RedisUpstreamOptions{});
  ASSERT_TRUE(WaitFor([&] {
    const RedisUpstreamStats stats = upstream_->Stats();
    return stats.connect_failures >= 4 &&
           stats.last_error.find("ROLE: the node is a replica") != std::string::npos;
  }));
  EXPECT_EQ(upstream_->sentinel_master(), absl::StrCat("127.0.0.1:", setup_.node(0).port()));
  EXPECT_FALSE(listener_.Await(0, Event::kConnected, "", absl::ZeroDuration()).has_value());
  EXPECT_FALSE(upstream_->connected());

  // Node 0 is the master again: Bridge, still trying, connects.
  swap(0, 1);
  ConnectAndSubscribe(0, "roles");
  ExpectDelivered(0, "roles", "accepted");
}

// An ACL user limited to pub/sub may not run ROLE: Bridge then trusts the sentinels
// rather than refusing every node.
TEST_F(RedisSentinelTest, AUserThatMayNotAskRoleStillConnects) {
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(setup_.node(i)
                    .Command({"ACL", "SETUSER", "bridge", "on", ">pw", "&*", "+@pubsub", "+ping"})
                    .ok());
  }
  std::string url = setup_.url();
  url.insert(std::string("redis+sentinel://").size(), "bridge:pw@");
  Start(RedisUpstreamOptions{}, url);
  ConnectAndSubscribe(0, "limited");
  ExpectDelivered(0, "limited", "through-acl");
}

// Both passwords: the master's in the URL's user part, the sentinels' in its query.
class RedisSentinelAuthTest : public RedisSentinelTest {
 protected:
  RedisSentinelAuthTest()
      : RedisSentinelTest({.master_password = "m@sterpw", .sentinel_password = "sentinelpw"}) {}
};

TEST_F(RedisSentinelAuthTest, AuthenticatesToTheSentinelsAndToTheMaster) {
  std::string url = setup_.url();
  // Percent-encoded, as a password with '@' should be.
  const std::string plain = ":m@sterpw@";
  url.replace(url.find(plain), plain.size(), ":m%40sterpw@");
  Start(RedisUpstreamOptions{}, url);
  ConnectAndSubscribe(0, "secret");
  ExpectDelivered(0, "secret", "authenticated");
}

}  // namespace
}  // namespace bridge::redis
