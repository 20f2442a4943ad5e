#include "bridge/redis/cluster_upstream.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/hub/hub.h"
#include "bridge/redis/cluster_slot.h"
#include "bridge/redis/probe_channel.h"
#include "gtest/gtest.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/redis_server.h"

namespace bridge::redis {
namespace {

constexpr absl::Duration kWait = absl::Seconds(30);

// Wakes the test thread whenever any subscriber's queue turns non-empty.
class Bell {
 public:
  void Ring() {
    absl::MutexLock lock(&mu_);
    ++rings_;
  }
  // Waits for a ring after `seen`, until `deadline`; returns the count of rings.
  uint64_t WaitAfter(uint64_t seen, absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto rang = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return rings_ != seen; };
    mu_.AwaitWithDeadline(absl::Condition(&rang), deadline);
    return rings_;
  }

 private:
  absl::Mutex mu_;
  uint64_t rings_ ABSL_GUARDED_BY(mu_) = 0;
};

class BellSink : public hub::Sink {
 public:
  explicit BellSink(Bell* bell) : bell_(bell) {}
  void OnReady() override { bell_->Ring(); }

 private:
  Bell* bell_;
};

// What one subscriber received, per channel: "sub", "gap:<reason>", or the payload.
using Received = std::map<std::string, std::vector<std::string>>;

// A Hub on a ClusterUpstream on the real cluster, with an io_context thread.
class ClusterBridge {
 public:
  explicit ClusterBridge(const std::string& url, std::vector<std::string> sharded,
                         absl::Duration publish_timeout = absl::Seconds(5),
                         const std::function<void(RedisUpstreamOptions&)>& tune = nullptr) {
    RedisUpstreamOptions options;
    options.publish_timeout = publish_timeout;
    options.url = url;
    options.sharded_channels = std::move(sharded);
    options.connect_timeout = absl::Seconds(2);
    options.backoff_initial = absl::Milliseconds(20);
    options.backoff_max = absl::Milliseconds(500);
    if (tune) tune(options);
    absl::StatusOr<std::unique_ptr<ClusterUpstream>> upstream =
        ClusterUpstream::Create(options, io_);
    if (!upstream.ok()) {
      ADD_FAILURE() << upstream.status();
      return;
    }
    upstream_ = *std::move(upstream);
    hub::HubOptions hub_options;
    hub_options.on_health_change = [this](bool healthy) {
      absl::MutexLock lock(&mu_);
      healthy_ = healthy;
    };
    hub_ = std::make_unique<hub::Hub>(hub_options, upstream_.get());
    thread_ = std::thread([this] { io_.run(); });
    upstream_->Start();
  }
  ~ClusterBridge() {
    if (upstream_ != nullptr) upstream_->Stop();
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  bool ok() const { return hub_ != nullptr; }
  hub::Hub& hub() { return *hub_; }
  ClusterUpstream& upstream() { return *upstream_; }

  bool WaitHealthy(bool healthy) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return healthy_ == healthy; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait);
  }
  // As WaitHealthy, within `timeout`.
  bool WaitHealthyWithin(bool healthy, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return healthy_ == healthy; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

  int Add(const std::vector<std::string>& channels, const std::vector<std::string>& patterns = {}) {
    auto sink = std::make_shared<BellSink>(&bell_);
    absl::StatusOr<std::shared_ptr<hub::Subscriber>> s = hub_->Connect(sink, {});
    EXPECT_TRUE(s.ok());
    EXPECT_TRUE(hub_->Subscribe(*s, channels, patterns).ok());
    subscribers_.push_back(*s);
    received_.emplace_back();
    return static_cast<int>(subscribers_.size()) - 1;
  }

  // Takes every queued event into received(); waits for more until `done` holds or the
  // deadline passes.
  bool DrainUntil(const std::function<bool()>& done, absl::Duration timeout = kWait) {
    const absl::Time deadline = absl::Now() + timeout;
    uint64_t seen = 0;
    while (true) {
      for (size_t i = 0; i < subscribers_.size(); ++i) {
        hub::Event e;
        while (subscribers_[i]->Pop(&e) == hub::Subscriber::PopResult::kEvent) {
          std::vector<std::string>& log = received_[i][e.topic.name];
          switch (e.type) {
            case hub::Event::Type::kSubscribed:
              log.push_back("sub");
              break;
            case hub::Event::Type::kGap:
              log.push_back(absl::StrCat("gap:", e.reason));
              break;
            case hub::Event::Type::kRefused:
              log.push_back("refused");
              break;
            case hub::Event::Type::kMessage:
              received_[i][e.message->channel()].push_back(e.message->payload());
              break;
          }
        }
      }
      if (done()) return true;
      if (absl::Now() > deadline) return false;
      seen = bell_.WaitAfter(seen, std::min(deadline, absl::Now() + absl::Milliseconds(200)));
    }
  }

  // Every subscriber leaves.
  void DisconnectAll() {
    for (const auto& s : subscribers_) hub_->Disconnect(s);
  }

  const Received& received(int i) const { return received_[i]; }
  size_t size() const { return subscribers_.size(); }

  // Publishes through the hub and waits for the answer.
  absl::StatusOr<int64_t> Publish(const std::string& channel, const std::string& payload) {
    absl::Notification done;
    absl::StatusOr<int64_t> out;
    hub_->Publish(channel, payload, "", [&](absl::StatusOr<hub::PublishResult> r) {
      out = r.ok() ? absl::StatusOr<int64_t>(r->receivers) : r.status();
      done.Notify();
    });
    if (!done.WaitForNotificationWithTimeout(kWait)) {
      return absl::DeadlineExceededError("publish unanswered");
    }
    return out;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::thread thread_;
  std::unique_ptr<ClusterUpstream> upstream_;
  std::unique_ptr<hub::Hub> hub_;
  Bell bell_;
  std::vector<std::shared_ptr<hub::Subscriber>> subscribers_;
  std::vector<Received> received_;
  absl::Mutex mu_;
  bool healthy_ ABSL_GUARDED_BY(mu_) = false;
};

// Counts the entries of one channel's log that are messages (not "sub" or gaps).
std::vector<std::string> Messages(const Received& r, const std::string& channel) {
  std::vector<std::string> out;
  auto it = r.find(channel);
  if (it == r.end()) return out;
  for (const auto& e : it->second) {
    if (e != "sub" && e.rfind("gap:", 0) != 0) out.push_back(e);
  }
  return out;
}

int Gaps(const Received& r, const std::string& channel) {
  int n = 0;
  auto it = r.find(channel);
  if (it == r.end()) return 0;
  for (const auto& e : it->second) n += e.rfind("gap:", 0) == 0 ? 1 : 0;
  return n;
}

bool Subscribed(const Received& r, const std::string& channel) {
  auto it = r.find(channel);
  return it != r.end() && !it->second.empty() && it->second.front() == "sub";
}

TEST(ClusterUpstreamCreateTest, RefusesWhatItCannotServe) {
  testing::RedisServer single;
  boost::asio::io_context io;
  RedisUpstreamOptions options;
  options.url = single.url();
  EXPECT_EQ(ClusterUpstream::Create(options, io).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.url = absl::StrCat("redis+cluster://127.0.0.1:", single.port());
  absl::StatusOr<std::unique_ptr<ClusterUpstream>> not_cluster =
      ClusterUpstream::Create(options, io);
  EXPECT_EQ(not_cluster.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(not_cluster.status().message().find("not a cluster node"), std::string::npos)
      << not_cluster.status();
  options.url = absl::StrCat("redis+cluster://127.0.0.1:", testing::FreePort());
  EXPECT_EQ(ClusterUpstream::Create(options, io).status().code(), absl::StatusCode::kUnavailable);
  options.sharded_channels = {"orders.[a"};
  EXPECT_EQ(ClusterUpstream::Create(options, io).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A cluster node of a Redis before 7, as far as ClusterUpstream::Create asks: in cluster
// mode, without SPUBLISH (COMMAND INFO answers nil for it). Serves one connection.
class OldClusterNode {
 public:
  OldClusterNode() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listener_, 1), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~OldClusterNode() {
    thread_.join();
    ::close(listener_);
  }
  int port() const { return port_; }

 private:
  void Serve() {
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    char buffer[4096];
    while (true) {
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n <= 0) break;
      // hiredis' blocking context sends the next command only after this reply.
      const std::string command(buffer, static_cast<size_t>(n));
      std::string reply = "-ERR unknown command\r\n";
      if (command.find("CLUSTER") != std::string::npos) {
        reply = "$16\r\ncluster_state:ok\r\n";
      } else if (command.find("COMMAND") != std::string::npos) {
        reply = "*1\r\n$-1\r\n";
      }
      if (::write(fd, reply.data(), reply.size()) != static_cast<ssize_t>(reply.size())) break;
    }
    ::close(fd);
  }

  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST(ClusterUpstreamCreateTest, ShardedChannelsNeedSpublish) {
  boost::asio::io_context io;
  RedisUpstreamOptions options;
  options.sharded_channels = {"orders.*"};
  {
    OldClusterNode node;
    options.url = absl::StrCat("redis+cluster://127.0.0.1:", node.port());
    absl::StatusOr<std::unique_ptr<ClusterUpstream>> refused = ClusterUpstream::Create(options, io);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(refused.status().message().find("does not know SPUBLISH"), std::string::npos)
        << refused.status();
  }
  {
    // Without sharded channels such a cluster is served, with classic pub/sub alone.
    OldClusterNode node;
    options.url = absl::StrCat("redis+cluster://127.0.0.1:", node.port());
    options.sharded_channels.clear();
    absl::StatusOr<std::unique_ptr<ClusterUpstream>> served = ClusterUpstream::Create(options, io);
    ASSERT_TRUE(served.ok()) << served.status();
    EXPECT_FALSE((*served)->info().sharded_pubsub);
    EXPECT_FALSE((*served)->IsSharded("orders.1"));
    // Its Stop runs on the strand, which needs a thread.
    auto work = boost::asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    served->reset();
    work.reset();
    runner.join();
  }
}

class ClusterUpstreamTest : public ::testing::Test {
 protected:
  // `n` sharded channel names, at least one on every master.
  std::vector<std::string> ShardedChannels(int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(absl::StrCat("orders.", i));
    std::set<int> masters;
    for (const auto& c : out) masters.insert(cluster_.MasterOfSlot(KeySlot(c)));
    EXPECT_EQ(masters.size(), 3u);
    return out;
  }

  testing::RedisCluster cluster_;
};

TEST_F(ClusterUpstreamTest, OneSsubscribePerChannelOnItsMasterAndEveryMessageOnceInOrder) {
  ClusterBridge bridge(cluster_.url(), {"orders.*"});
  ASSERT_TRUE(bridge.ok());
  ASSERT_TRUE(bridge.upstream().info().sharded_pubsub);
  const std::vector<std::string> channels = ShardedChannels(60);
  // 200 subscribers, each on two channels: every channel has several.
  std::map<std::string, std::vector<int>> holders;
  for (int k = 0; k < 200; ++k) {
    const std::string a = channels[k % 60];
    const std::string b = channels[(k * 7 + 3) % 60];
    std::vector<std::string> mine = {a};
    if (b != a) mine.push_back(b);
    const int id = bridge.Add(mine);
    for (const auto& c : mine) holders[c].push_back(id);
  }
  // Classic pub/sub rides alongside: a channel and a pattern.
  const int classic = bridge.Add({"news"}, {"alerts.*"});
  ASSERT_TRUE(bridge.DrainUntil([&] {
    for (const auto& [channel, ids] : holders) {
      for (int id : ids) {
        if (!Subscribed(bridge.received(id), channel)) return false;
      }
    }
    return Subscribed(bridge.received(classic), "news") &&
           Subscribed(bridge.received(classic), "alerts.*");
  }));

  // Exactly one SSUBSCRIBE per channel, on the master of its slot, none elsewhere
  // (replicas included).
  for (const auto& channel : channels) {
    const int owner = cluster_.MasterOfSlot(KeySlot(channel));
    for (int node : cluster_.ports()) {
      EXPECT_EQ(cluster_.ShardNumSub(node, channel), node == owner ? 1 : 0)
          << channel << " on " << node;
    }
  }

  // Published through the bridge (SPUBLISH routed by slot): each reaches every holder
  // once, in order.
  constexpr int kMessages = 20;
  const absl::Time publishing = absl::Now();
  for (int m = 0; m < kMessages; ++m) {
    for (const auto& channel : channels) {
      absl::StatusOr<int64_t> receivers = bridge.Publish(channel, absl::StrCat(channel, "#", m));
      ASSERT_TRUE(receivers.ok()) << receivers.status();
      EXPECT_EQ(*receivers, 1) << channel;  // The bridge's one subscription.
    }
  }
  ASSERT_TRUE(bridge.Publish("news", "classic").ok());
  ASSERT_TRUE(bridge.Publish("alerts.fire", "pattern").ok());
  ASSERT_TRUE(bridge.DrainUntil([&] {
    for (const auto& [channel, ids] : holders) {
      for (int id : ids) {
        if (Messages(bridge.received(id), channel).size() < kMessages) return false;
      }
    }
    return Messages(bridge.received(classic), "news").size() == 1 &&
           Messages(bridge.received(classic), "alerts.fire").size() == 1;
  }));
  std::printf(
      "figures: %d publishes (one at a time, each awaited) and their delivery to 200 "
      "subscribers over 60 sharded channels took %s\n",
      kMessages * 60 + 2, absl::FormatDuration(absl::Now() - publishing).c_str());
  for (const auto& [channel, ids] : holders) {
    std::vector<std::string> want;
    for (int m = 0; m < kMessages; ++m) want.push_back(absl::StrCat(channel, "#", m));
    for (int id : ids) {
      EXPECT_EQ(Messages(bridge.received(id), channel), want) << channel << " subscriber " << id;
      EXPECT_EQ(Gaps(bridge.received(id), channel), 0);
    }
  }
  EXPECT_TRUE(bridge.hub().Healthy());

  // The last subscriber gone, every subscription is dropped: SUNSUBSCRIBE on its master.
  bridge.DisconnectAll();
  EXPECT_TRUE(testing::WaitFor([&] {
    for (const auto& channel : channels) {
      if (cluster_.ShardNumSub(cluster_.MasterOfSlot(KeySlot(channel)), channel) != 0) {
        return false;
      }
    }
    return bridge.hub().Stats().topics() == 0;
  }));
}

TEST_F(ClusterUpstreamTest, AKilledMasterGapsOnlyItsOwnShard) {
  ClusterBridge bridge(cluster_.url(), {"orders.*"});
  ASSERT_TRUE(bridge.ok());
  const std::vector<std::string> channels = ShardedChannels(30);
  std::vector<int> ids;
  for (const auto& channel : channels) ids.push_back(bridge.Add({channel}));
  ASSERT_TRUE(bridge.DrainUntil([&] {
    for (size_t i = 0; i < channels.size(); ++i) {
      if (!Subscribed(bridge.received(ids[i]), channels[i])) return false;
    }
    return true;
  }));
  ASSERT_TRUE(bridge.WaitHealthy(true));

  const int victim = cluster_.MasterOfSlot(KeySlot(channels[0]));
  const int replica = cluster_.ReplicaOf(victim);
  ASSERT_GT(replica, 0);
  std::vector<size_t> on_victim, elsewhere;
  for (size_t i = 0; i < channels.size(); ++i) {
    (cluster_.MasterOfSlot(KeySlot(channels[i])) == victim ? on_victim : elsewhere).push_back(i);
  }
  ASSERT_FALSE(on_victim.empty());
  ASSERT_FALSE(elsewhere.empty());

  const absl::Time killed = absl::Now();
  cluster_.Kill(victim);
  // The other shards keep delivering while the killed one fails over: every message
  // published on them arrives, with no gap.
  int sent_elsewhere = 0;
  const absl::Time start = absl::Now();
  bool promoted = false;
  while (!promoted) {
    for (size_t i : elsewhere) {
      absl::StatusOr<int64_t> r = bridge.Publish(channels[i], absl::StrCat("m", sent_elsewhere));
      ASSERT_TRUE(r.ok()) << channels[i] << ": " << r.status();
    }
    ++sent_elsewhere;
    promoted = cluster_.WaitForHealthy(absl::Milliseconds(100));
    ASSERT_LT(absl::Now() - start, absl::Seconds(60)) << "no failover";
  }
  EXPECT_EQ(cluster_.MasterOfSlot(KeySlot(channels[on_victim[0]])), replica);

  const absl::Duration failover = absl::Now() - killed;
  // The promoted replica's channels deliver again, after one gap.
  ASSERT_TRUE(bridge.WaitHealthy(true));
  std::printf(
      "figures: failover seen by the cluster %s after the kill, bridge healthy again %s "
      "after it; %d publishes per other-shard channel meanwhile\n",
      absl::FormatDuration(failover).c_str(), absl::FormatDuration(absl::Now() - killed).c_str(),
      sent_elsewhere);
  for (size_t i : on_victim) {
    absl::StatusOr<int64_t> r = bridge.Publish(channels[i], "after");
    ASSERT_TRUE(r.ok()) << channels[i] << ": " << r.status();
  }
  ASSERT_TRUE(bridge.DrainUntil([&] {
    for (size_t i : on_victim) {
      if (Messages(bridge.received(ids[i]), channels[i]).empty()) return false;
    }
    for (size_t i : elsewhere) {
      if (Messages(bridge.received(ids[i]), channels[i]).size() <
          static_cast<size_t>(sent_elsewhere)) {
        return false;
      }
    }
    return true;
  }));
  for (size_t i : on_victim) {
    const Received& r = bridge.received(ids[i]);
    EXPECT_EQ(r.at(channels[i]), (std::vector<std::string>{"sub", "gap:redis_reconnect", "after"}))
        << channels[i];
    EXPECT_EQ(cluster_.ShardNumSub(replica, channels[i]), 1);
  }
  for (size_t i : elsewhere) {
    const Received& r = bridge.received(ids[i]);
    EXPECT_EQ(Gaps(r, channels[i]), 0) << channels[i];
    std::vector<std::string> want;
    for (int m = 0; m < sent_elsewhere; ++m) want.push_back(absl::StrCat("m", m));
    EXPECT_EQ(Messages(r, channels[i]), want) << channels[i];
  }
}

TEST_F(ClusterUpstreamTest, AMigratedChannelKeepsDelivering) {
  ClusterBridge bridge(cluster_.url(), {"orders.*"});
  ASSERT_TRUE(bridge.ok());
  const std::string moving = "orders.moving";
  const std::string staying = "orders.{staying}";
  const int slot = KeySlot(moving);
  const int from = cluster_.MasterOfSlot(slot);
  int to = -1;
  for (int master : cluster_.Masters()) {
    if (master != from && master != cluster_.MasterOfSlot(KeySlot(staying))) to = master;
  }
  if (to < 0) {
    for (int master : cluster_.Masters()) {
      if (master != from) to = master;
    }
  }
  const int a = bridge.Add({moving});
  const int b = bridge.Add({moving});
  const int other = bridge.Add({staying});
  ASSERT_TRUE(bridge.DrainUntil([&] {
    return Subscribed(bridge.received(a), moving) && Subscribed(bridge.received(b), moving) &&
           Subscribed(bridge.received(other), staying);
  }));
  ASSERT_TRUE(bridge.Publish(moving, "before").ok());

  ASSERT_TRUE(cluster_.MoveSlot(slot, to).ok());
  // The bridge follows the sunsubscribe to the new owner; publishing there (the bridge
  // follows MOVED too) reaches the subscribers again.
  int sent = 0;
  ASSERT_TRUE(bridge.DrainUntil(
      [&] {
        if (Messages(bridge.received(a), moving).size() > 1 &&
            Messages(bridge.received(b), moving).size() > 1) {
          return true;
        }
        EXPECT_TRUE(bridge.Publish(moving, absl::StrCat("after", sent++)).ok());
        return false;
      },
      absl::Seconds(30)));
  EXPECT_EQ(cluster_.ShardNumSub(to, moving), 1);
  EXPECT_EQ(cluster_.ShardNumSub(from, moving), 0);
  for (int id : {a, b}) {
    EXPECT_LE(Gaps(bridge.received(id), moving), 1);
    EXPECT_EQ(Messages(bridge.received(id), moving).front(), "before");
  }
  ASSERT_TRUE(bridge.Publish(staying, "still").ok());
  ASSERT_TRUE(
      bridge.DrainUntil([&] { return !Messages(bridge.received(other), staying).empty(); }));
  EXPECT_EQ(Gaps(bridge.received(other), staying), 0);
}

TEST_F(ClusterUpstreamTest, AFrozenMasterTimesPublishesOutAndIsReconnected) {
  ClusterBridge bridge(cluster_.url(), {"orders.*"}, absl::Milliseconds(300));
  ASSERT_TRUE(bridge.ok());
  ASSERT_TRUE(bridge.WaitHealthy(true));
  const std::string channel = "orders.frozen";
  const int owner = cluster_.MasterOfSlot(KeySlot(channel));
  ASSERT_TRUE(bridge.Publish(channel, "warm").ok());
  // The master answers nobody for a while.
  ASSERT_TRUE(cluster_.Command(owner, {"CLIENT", "PAUSE", "1500", "ALL"}).ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<int64_t> frozen = bridge.Publish(channel, "frozen");
  EXPECT_EQ(frozen.status().code(), absl::StatusCode::kDeadlineExceeded) << frozen.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(bridge.upstream().Stats().publish_resets, 1u);
  // Once the pause ends, a new connection carries publishes again.
  ASSERT_TRUE(
      testing::WaitFor([&] { return bridge.Publish(channel, "thawed").ok(); }, absl::Seconds(10)));
}

TEST_F(ClusterUpstreamTest, ClassicPubSubMovesToAnotherNodeWhenItsNodeDies) {
  ClusterBridge bridge(cluster_.url(), {"orders.*"});
  ASSERT_TRUE(bridge.ok());
  const int id = bridge.Add({"news"}, {"alerts.*"});
  ASSERT_TRUE(bridge.DrainUntil([&] {
    return Subscribed(bridge.received(id), "news") && Subscribed(bridge.received(id), "alerts.*");
  }));
  // The classic connection goes to the node that first answered: the first seed.
  const int classic = cluster_.ports()[0];
  ASSERT_EQ(cluster_.Command(classic, {"PUBSUB", "NUMSUB", "news"}).value(), "news\n1");
  cluster_.Kill(classic);
  ASSERT_TRUE(cluster_.WaitForHealthy());
  ASSERT_TRUE(bridge.WaitHealthy(true));
  ASSERT_TRUE(bridge.Publish("news", "after").ok());
  ASSERT_TRUE(bridge.Publish("alerts.fire", "after").ok());
  ASSERT_TRUE(bridge.DrainUntil([&] {
    return !Messages(bridge.received(id), "news").empty() &&
           !Messages(bridge.received(id), "alerts.fire").empty();
  }));
  EXPECT_EQ(bridge.received(id).at("news"),
            (std::vector<std::string>{"sub", "gap:redis_reconnect", "after"}));
  EXPECT_EQ(bridge.received(id).at("alerts.*"),
            (std::vector<std::string>{"sub", "gap:redis_reconnect"}));
  EXPECT_EQ(Messages(bridge.received(id), "alerts.fire"), (std::vector<std::string>{"after"}));
}

TEST_F(ClusterUpstreamTest, AShardDownForGoodIsRetriedWithBackoffWhileOthersDeliver) {
  ClusterBridge bridge(cluster_.url(), {"orders.*"});
  ASSERT_TRUE(bridge.ok());
  const std::vector<std::string> channels = ShardedChannels(12);
  std::vector<int> ids;
  for (const auto& channel : channels) ids.push_back(bridge.Add({channel}));
  ASSERT_TRUE(bridge.DrainUntil([&] {
    for (size_t i = 0; i < channels.size(); ++i) {
      if (!Subscribed(bridge.received(ids[i]), channels[i])) return false;
    }
    return true;
  }));
  // A master and its replica both gone: its slots have no one to serve them.
  const int victim = cluster_.MasterOfSlot(KeySlot(channels[0]));
  const int replica = cluster_.ReplicaOf(victim);
  std::vector<size_t> elsewhere;
  for (size_t i = 0; i < channels.size(); ++i) {
    if (cluster_.MasterOfSlot(KeySlot(channels[i])) != victim) elsewhere.push_back(i);
  }
  ASSERT_FALSE(elsewhere.empty());
  const uint64_t failures_before = bridge.upstream().Stats().connect_failures;
  cluster_.Kill(replica);
  cluster_.Kill(victim);
  // Three seconds of publishing on the other shards: each message arrives.
  int sent = 0;
  const absl::Time until = absl::Now() + absl::Seconds(3);
  while (absl::Now() < until) {
    for (size_t i : elsewhere) {
      absl::StatusOr<int64_t> r = bridge.Publish(channels[i], absl::StrCat("m", sent));
      ASSERT_TRUE(r.ok()) << channels[i] << ": " << r.status();
    }
    ++sent;
    // Taken as they come, so that no queue reaches its bound.
    bridge.DrainUntil([] { return true; });
  }
  ASSERT_TRUE(bridge.DrainUntil([&] {
    for (size_t i : elsewhere) {
      if (Messages(bridge.received(ids[i]), channels[i]).size() < static_cast<size_t>(sent)) {
        return false;
      }
    }
    return true;
  }));
  for (size_t i : elsewhere) EXPECT_EQ(Gaps(bridge.received(ids[i]), channels[i]), 0);
  // The dead shard is asked after with backoff (500 ms at most here), not in a loop.
  const uint64_t failures = bridge.upstream().Stats().connect_failures - failures_before;
  std::printf("figures: %llu failed connection attempts in 3 s with one shard down for good\n",
              static_cast<unsigned long long>(failures));
  EXPECT_LT(failures, 60u);
  EXPECT_FALSE(bridge.hub().Healthy());
}

// Probes every 200 ms, each lost 1.5 s after it went out: short for a test, and still
// beyond what a busy test host delays a probe that Redis did deliver.
void FastProbes(RedisUpstreamOptions& options) {
  options.probe_interval = absl::Milliseconds(200);
  options.probe_timeout = absl::Milliseconds(1500);
}

TEST_F(ClusterUpstreamTest, AFrozenMasterFailsItsShardsProbeAndOnlyItsShardGaps) {
  ClusterBridge bridge(cluster_.url(), {"orders.*"}, absl::Seconds(5), FastProbes);
  ASSERT_TRUE(bridge.ok());
  const std::vector<std::string> channels = ShardedChannels(12);
  std::vector<int> ids;
  for (const auto& channel : channels) ids.push_back(bridge.Add({channel}));
  ASSERT_TRUE(bridge.DrainUntil([&] {
    for (size_t i = 0; i < channels.size(); ++i) {
      if (!Subscribed(bridge.received(ids[i]), channels[i])) return false;
    }
    return true;
  }));
  ASSERT_TRUE(bridge.WaitHealthy(true));
  const int victim = cluster_.MasterOfSlot(KeySlot(channels[0]));
  std::vector<size_t> on_victim, elsewhere;
  for (size_t i = 0; i < channels.size(); ++i) {
    (cluster_.MasterOfSlot(KeySlot(channels[i])) == victim ? on_victim : elsewhere).push_back(i);
  }
  ASSERT_FALSE(elsewhere.empty());
  // Each of the three shard connections has probed a few rounds.
  ASSERT_TRUE(testing::WaitFor([&] { return bridge.upstream().Stats().probes_sent >= 12; }));
  const RedisUpstreamStats before = bridge.upstream().Stats();
  EXPECT_EQ(before.probes_lost, 0u);

  // SIGSTOP: the master keeps its connections open and answers nothing.
  const absl::Time frozen = absl::Now();
  cluster_.Pause(victim);
  // The probe bound: the next round within 200 ms, lost 1.5 s later; slack for a busy host.
  ASSERT_TRUE(bridge.WaitHealthyWithin(false, absl::Seconds(4)));
  const absl::Duration detected = absl::Now() - frozen;
  const RedisUpstreamStats after = bridge.upstream().Stats();
  EXPECT_GE(after.probes_lost, 1u);
  // That shard's connection was dropped.
  EXPECT_GT(after.disconnects, before.disconnects);

  // The other shards deliver all along: messages published there while the victim is
  // frozen, and after it resumed.
  int sent = 0;
  auto publish_elsewhere = [&] {
    for (size_t i : elsewhere) {
      absl::StatusOr<int64_t> r = bridge.Publish(channels[i], absl::StrCat("m", sent));
      ASSERT_TRUE(r.ok()) << channels[i] << ": " << r.status();
    }
    ++sent;
  };
  // Frozen for 2.5 s in all, past a reconnect's handshake timeout (2 s here). Health
  // stays NOT_SERVING until the shard delivers again: on the same master once it
  // answers, or on its replica if the cluster fails it over meanwhile.
  while (absl::Now() - frozen < absl::Milliseconds(2500)) {
    publish_elsewhere();
  }

  // SIGCONT, before or after the replica took over: either way the cluster settles, the
  // victim's channels deliver again (on the old master, or on the promoted replica), and
  // health comes back.
  cluster_.Resume(victim);
  const absl::Time resumed = absl::Now();
  ASSERT_TRUE(cluster_.WaitForHealthy());
  publish_elsewhere();
  int after_sent = 0;
  ASSERT_TRUE(bridge.DrainUntil([&] {
    bool all = true;
    for (size_t i : on_victim) {
      if (Messages(bridge.received(ids[i]), channels[i]).empty()) {
        all = false;
        // Perhaps UNAVAILABLE while the bridge follows the topology; sent again.
        (void)bridge.Publish(channels[i], absl::StrCat("after", after_sent++));
      }
    }
    return all;
  }));
  ASSERT_TRUE(bridge.WaitHealthy(true));
  const absl::Duration recovered = absl::Now() - resumed;
  publish_elsewhere();
  ASSERT_TRUE(bridge.DrainUntil([&] {
    for (size_t i : elsewhere) {
      if (Messages(bridge.received(ids[i]), channels[i]).size() < static_cast<size_t>(sent)) {
        return false;
      }
    }
    return true;
  }));
  std::printf(
      "figures: SIGSTOP of a master -> NOT_SERVING in %s (probe every 200ms, timeout 1.5s); "
      "SIGCONT -> SERVING again in %s; master %s\n",
      absl::FormatDuration(detected).c_str(), absl::FormatDuration(recovered).c_str(),
      cluster_.MasterOfSlot(KeySlot(channels[0])) == victim ? "kept" : "failed over");
  for (size_t i : on_victim) {
    EXPECT_GE(Gaps(bridge.received(ids[i]), channels[i]), 1) << channels[i];
  }
  for (size_t i : elsewhere) {
    const Received& r = bridge.received(ids[i]);
    EXPECT_EQ(Gaps(r, channels[i]), 0) << channels[i];
    std::vector<std::string> want;
    for (int m = 0; m < sent; ++m) want.push_back(absl::StrCat("m", m));
    EXPECT_EQ(Messages(r, channels[i]), want) << channels[i];
  }
}

TEST_F(ClusterUpstreamTest, EveryConnectionIsProbedAndNoProbeReachesAClient) {
  ClusterBridge bridge(cluster_.url(), {"orders.*"}, absl::Seconds(5),
                       [](RedisUpstreamOptions& o) { o.probe_interval = absl::Milliseconds(100); });
  ASSERT_TRUE(bridge.ok());
  const std::vector<std::string> channels = ShardedChannels(12);
  const int sharded = bridge.Add(channels);
  // Classic pub/sub, with a pattern that matches every channel, probes' included.
  const int everything = bridge.Add({"news"}, {"*"});
  const std::string guess = std::string(kProbeChannelPrefix) + "guess";
  const int guesser = bridge.Add({guess});
  ASSERT_TRUE(bridge.DrainUntil([&] {
    for (const auto& channel : channels) {
      if (!Subscribed(bridge.received(sharded), channel)) return false;
    }
    auto refused = bridge.received(guesser).find(guess);
    return Subscribed(bridge.received(everything), "news") &&
           Subscribed(bridge.received(everything), "*") &&
           refused != bridge.received(guesser).end() && !refused->second.empty();
  }));
  // A client may not subscribe a probe channel.
  EXPECT_EQ(bridge.received(guesser).at(guess), (std::vector<std::string>{"refused"}));

  // One probe channel subscribed on every master, on a slot it serves...
  ASSERT_TRUE(testing::WaitFor([&] {
    for (int master : cluster_.Masters()) {
      absl::StatusOr<std::string> r =
          cluster_.Command(master, {"PUBSUB", "SHARDCHANNELS", "__bridge_probe__:*"});
      if (!r.ok() || r->empty() || r->find('\n') != std::string::npos) return false;
      if (cluster_.MasterOfSlot(KeySlot(*r)) != master) return false;
    }
    return true;
  }));
  // ...and one on the classic connection's node alone.
  ASSERT_TRUE(testing::WaitFor([&] {
    int classic = 0;
    for (int node : cluster_.ports()) {
      absl::StatusOr<std::string> r =
          cluster_.Command(node, {"PUBSUB", "CHANNELS", "__bridge_probe__:*"});
      if (!r.ok()) return false;
      if (!r->empty()) classic += 1 + static_cast<int>(std::count(r->begin(), r->end(), '\n'));
    }
    return classic == 1;
  }));

  // Forty rounds over the four connections, none lost: every connection's probes come
  // back (one that did not would count as lost within a second).
  const uint64_t sent_before = bridge.upstream().Stats().probes_sent;
  ASSERT_TRUE(
      testing::WaitFor([&] { return bridge.upstream().Stats().probes_sent >= sent_before + 40; }));
  const RedisUpstreamStats stats = bridge.upstream().Stats();
  EXPECT_EQ(stats.probes_lost, 0u);
  EXPECT_LT(stats.probe_last_round_trip, absl::Seconds(1));
  EXPECT_TRUE(bridge.hub().Healthy());

  // The pattern hears a client's message, on its channel and through the pattern, and
  // never a probe.
  ASSERT_TRUE(bridge.Publish("news", "hello").ok());
  ASSERT_TRUE(
      bridge.DrainUntil([&] { return Messages(bridge.received(everything), "news").size() == 2; }));
  for (int id : {sharded, everything}) {
    for (const auto& [channel, log] : bridge.received(id)) {
      EXPECT_FALSE(IsProbeChannel(channel)) << channel;
    }
  }
}

}  // namespace
}  // namespace bridge::redis
