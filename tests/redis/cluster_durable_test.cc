// Durable channels on a real Redis Cluster: each FCALL runs on the master of the channel's
// slot, which holds every key of the channel, and publishes there (SPUBLISH for a sharded
// channel, PUBLISH otherwise).

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bridge/hub/durable_envelope.h"
#include "bridge/hub/history.h"
#include "bridge/redis/cluster_slot.h"
#include "bridge/redis/cluster_upstream.h"
#include "bridge/redis/durable_script.h"
#include "gtest/gtest.h"
#include "tests/redis/durable_harness.h"
#include "tests/support/redis_cluster.h"

namespace bridge::redis {
namespace {

using ::bridge::hub::DurablePublish;
using ::bridge::hub::DurablePublished;
using ::bridge::hub::HistoryPage;
using ::bridge::hub::HistoryQuery;
using ::bridge::hub::Topic;
using ::bridge::redis::durable_harness::Answer;
using ::bridge::redis::durable_harness::DurableListener;

class ClusterDurableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RedisUpstreamOptions options;
    options.url = cluster_.url();
    options.sharded_channels = {"live.*"};
    options.connect_timeout = absl::Seconds(2);
    options.backoff_initial = absl::Milliseconds(20);
    options.backoff_max = absl::Milliseconds(500);
    options.probe_interval = absl::ZeroDuration();
    absl::StatusOr<std::unique_ptr<ClusterUpstream>> upstream =
        ClusterUpstream::Create(options, io_);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = *std::move(upstream);
    upstream_->SetListener(&listener_);
    thread_ = std::thread([this] { io_.run(); });
    upstream_->Start();
    epoch_ = listener_.AwaitConnected();
    ASSERT_NE(epoch_, 0u);
  }
  void TearDown() override {
    if (upstream_ != nullptr) upstream_->Stop();
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  absl::StatusOr<DurablePublished> Publish(const std::string& channel, const std::string& payload) {
    DurablePublish request;
    request.channel = channel;
    request.payload = payload;
    Answer<DurablePublished> answer;
    upstream_->PublishDurable(std::move(request), answer.Callback());
    return answer.Await();
  }
  absl::StatusOr<HistoryPage> Read(const std::string& channel) {
    HistoryQuery query;
    query.channel = channel;
    Answer<HistoryPage> answer;
    upstream_->ReadHistory(std::move(query), answer.Callback());
    absl::StatusOr<HistoryPage> page = answer.Await();
    // Posted to the strand, which the io thread runs.
    EXPECT_NE(answer.thread(), std::this_thread::get_id());
    return page;
  }

  // Whether the master on `port` holds both keys of `channel` and the library.
  bool HoldsTheChannel(int port, const std::string& channel) {
    const DurableKeys keys = *DurableKeysFor(channel);
    absl::StatusOr<std::string> exists = cluster_.Command(port, {"EXISTS", keys.meta, keys.stream});
    absl::StatusOr<std::string> library = cluster_.Command(
        port, {"FUNCTION", "LIST", "LIBRARYNAME", std::string(kDurableLibraryName)});
    return exists.ok() && *exists == "2" && library.ok() && !library->empty();
  }

  testing::RedisCluster cluster_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread thread_;
  DurableListener listener_;
  std::unique_ptr<ClusterUpstream> upstream_;
  uint64_t epoch_ = 0;
};

TEST_F(ClusterDurableTest, EachShardedChannelIsKeptAndPublishedOnItsSlotsMaster) {
  std::vector<std::string> channels;
  std::set<int> masters;
  for (int i = 0; masters.size() < 3 && i < 100; ++i) {
    const std::string channel = absl::StrCat("live.", i);
    if (masters.insert(cluster_.MasterOfSlot(KeySlot(channel))).second) {
      channels.push_back(channel);
    }
  }
  ASSERT_EQ(masters.size(), 3u);
  for (const std::string& channel : channels) {
    upstream_->Subscribe(Topic::Channel(channel), epoch_);
    ASSERT_TRUE(listener_.AwaitSubscribed(Topic::Channel(channel)));
  }

  std::vector<DurablePublished> published;
  for (const std::string& channel : channels) {
    absl::StatusOr<DurablePublished> p = Publish(channel, "hello " + channel);
    ASSERT_TRUE(p.ok()) << channel << ": " << p.status();
    EXPECT_EQ(p->position.offset, 1u);
    // SPUBLISH counts every shard subscriber of the channel: this upstream's.
    EXPECT_EQ(p->receivers, 1);
    EXPECT_TRUE(HoldsTheChannel(cluster_.MasterOfSlot(KeySlot(channel)), channel)) << channel;
    published.push_back(*p);
  }
  const auto received = listener_.AwaitMessages(channels.size());
  ASSERT_EQ(received.size(), channels.size());
  for (size_t i = 0; i < channels.size(); ++i) {
    EXPECT_EQ(received[i].channel, channels[i]);
    EXPECT_EQ(received[i].payload,
              hub::SealEnvelope(published[i].position.epoch, published[i].position.offset,
                                "hello " + channels[i]));
  }
  absl::StatusOr<DurablePublished> second = Publish(channels[0], "again");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->position.offset, 2u);
  EXPECT_EQ(second->position.epoch, published[0].position.epoch);

  absl::StatusOr<HistoryPage> page = Read(channels[0]);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->top, 2u);
  ASSERT_EQ(page->entries.size(), 2u);
  EXPECT_EQ(page->entries[1].payload, "again");
}

TEST_F(ClusterDurableTest, AClassicChannelIsKeptOnItsSlotsMasterAndPublishedToEveryNode) {
  const std::string channel = "news";
  upstream_->Subscribe(Topic::Channel(channel), epoch_);
  ASSERT_TRUE(listener_.AwaitSubscribed(Topic::Channel(channel)));
  absl::StatusOr<DurablePublished> published = Publish(channel, "classic");
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_TRUE(HoldsTheChannel(cluster_.MasterOfSlot(KeySlot(channel)), channel));
  const auto received = listener_.AwaitMessages(1);
  ASSERT_EQ(received.size(), 1u);
  std::optional<hub::OpenedEnvelope> opened = hub::OpenEnvelope(received[0].payload);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(opened->payload, "classic");
  EXPECT_EQ(opened->offset, 1u);
  EXPECT_EQ(opened->epoch, published->position.epoch);
}

TEST_F(ClusterDurableTest, AnFcallFollowsMovedAndLoadsTheLibraryOnTheNewMaster) {
  const std::string channel = "live.moving";
  const int slot = KeySlot(channel);
  const int from = cluster_.MasterOfSlot(slot);
  // Warms the connection to the old master, library and all, on another of its slots.
  std::string neighbour;
  for (int i = 0; neighbour.empty(); ++i) {
    const std::string candidate = absl::StrCat("live.n", i);
    if (cluster_.MasterOfSlot(KeySlot(candidate)) == from) neighbour = candidate;
  }
  ASSERT_TRUE(Publish(neighbour, "warm").ok());
  int to = -1;
  for (int master : cluster_.Masters()) {
    if (master != from) to = master;
  }
  // The slot holds no key yet; the upstream still believes it on `from`.
  ASSERT_TRUE(cluster_.MoveSlot(slot, to).ok());

  absl::StatusOr<DurablePublished> published = Publish(channel, "moved");
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(published->position.offset, 1u);
  EXPECT_TRUE(HoldsTheChannel(to, channel));
}

TEST_F(ClusterDurableTest, AFlushedLibraryIsLoadedAgainOnThatMaster) {
  const std::string channel = "live.flushed";
  const int master = cluster_.MasterOfSlot(KeySlot(channel));
  ASSERT_TRUE(Publish(channel, "1").ok());
  ASSERT_TRUE(cluster_.Command(master, {"FUNCTION", "FLUSH"}).ok());
  absl::StatusOr<DurablePublished> published = Publish(channel, "2");
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(published->position.offset, 2u);
  ASSERT_TRUE(cluster_.Command(master, {"FUNCTION", "FLUSH"}).ok());
  absl::StatusOr<HistoryPage> page = Read(channel);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->entries.size(), 2u);
}

TEST_F(ClusterDurableTest, AChannelThatCannotBeDurableIsRefused) {
  EXPECT_EQ(Publish("live.a}b", "p").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Read("a}b").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bridge::redis
