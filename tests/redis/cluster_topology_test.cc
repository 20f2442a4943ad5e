#include "bridge/redis/cluster_topology.h"

#include <hiredis/hiredis.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bridge/redis/cluster_slot.h"
#include "gtest/gtest.h"
#include "tests/redis/resp_harness.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/redis_server.h"

namespace bridge::redis {
namespace {

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

ReplyPtr Ask(int port, const char* command) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err != 0) {
    if (c != nullptr) redisFree(c);
    return nullptr;
  }
  ReplyPtr r(static_cast<redisReply*>(redisCommand(c, command)));
  redisFree(c);
  return r;
}

TEST(ParseRedirectTest, MovedAndAsk) {
  int slot = 0;
  RedisUrl::Node node;
  ASSERT_TRUE(ParseRedirect("MOVED 3999 127.0.0.1:6381", "MOVED", &slot, &node));
  EXPECT_EQ(slot, 3999);
  EXPECT_EQ(node, (RedisUrl::Node{"127.0.0.1", 6381}));
  ASSERT_TRUE(ParseRedirect("ASK 12 [::1]:7000", "ASK", &slot, &node));
  EXPECT_EQ(node, (RedisUrl::Node{"::1", 7000}));
  ASSERT_TRUE(ParseRedirect("MOVED 1 ::1:7000", "MOVED", &slot, &node));
  EXPECT_EQ(node, (RedisUrl::Node{"::1", 7000}));
  EXPECT_FALSE(ParseRedirect("MOVED 16384 h:1", "MOVED", &slot, &node));
  EXPECT_FALSE(ParseRedirect("ASK 1 h:1", "MOVED", &slot, &node));
  EXPECT_FALSE(ParseRedirect("MOVED 1 h", "MOVED", &slot, &node));
  EXPECT_FALSE(ParseRedirect("ERR unknown command", "MOVED", &slot, &node));
}

class ClusterTopologyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new testing::RedisCluster(); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  // Checks a topology against the cluster's own view, slot by slot.
  static void ExpectMatchesCluster(const ClusterTopology& topology) {
    EXPECT_EQ(topology.slots_served(), kClusterSlots);
    EXPECT_EQ(topology.shards().size(), 3u);
    for (int slot = 0; slot < kClusterSlots; slot += 61) {
      const ClusterShard* shard = topology.ShardOfSlot(slot);
      ASSERT_NE(shard, nullptr) << "slot " << slot;
      EXPECT_EQ(shard->master.port, cluster_->MasterOfSlot(slot)) << "slot " << slot;
      EXPECT_EQ(shard->master.host, "127.0.0.1");
      EXPECT_EQ(shard->master_id, cluster_->NodeId(shard->master.port));
    }
  }

  static testing::RedisCluster* cluster_;
};

testing::RedisCluster* ClusterTopologyTest::cluster_ = nullptr;

TEST_F(ClusterTopologyTest, FromClusterShardsAndClusterSlots) {
  const int port = cluster_->ports()[0];
  const RedisUrl::Node asked{"127.0.0.1", port};
  ReplyPtr shards = Ask(port, "CLUSTER SHARDS");
  ASSERT_NE(shards, nullptr);
  absl::StatusOr<ClusterTopology> from_shards = ClusterTopology::FromShards(*shards, asked);
  ASSERT_TRUE(from_shards.ok()) << from_shards.status();
  ExpectMatchesCluster(*from_shards);

  ReplyPtr slots = Ask(port, "CLUSTER SLOTS");
  ASSERT_NE(slots, nullptr);
  absl::StatusOr<ClusterTopology> from_slots = ClusterTopology::FromSlots(*slots, asked);
  ASSERT_TRUE(from_slots.ok()) << from_slots.status();
  ExpectMatchesCluster(*from_slots);

  // A MOVED redirection moves one slot and nothing else.
  ClusterTopology moved = *from_shards;
  const RedisUrl::Node other =
      from_shards->ShardOfSlot(5)->master == from_shards->shards()[1].master
          ? from_shards->shards()[2].master
          : from_shards->shards()[1].master;
  moved.Move(5, other);
  EXPECT_EQ(moved.ShardOfSlot(5)->master, other);
  EXPECT_EQ(moved.ShardOfSlot(6)->master, from_shards->ShardOfSlot(6)->master);
  EXPECT_EQ(moved.slots_served(), kClusterSlots);

  ReplyPtr error = Ask(port, "CLUSTER NO-SUCH-SUBCOMMAND");
  ASSERT_NE(error, nullptr);
  EXPECT_FALSE(ClusterTopology::FromShards(*error, asked).ok());
  EXPECT_FALSE(ClusterTopology::FromSlots(*error, asked).ok());
}

// The push a shard subscriber gets when its channel's slot leaves the node, and the
// MOVED that a SSUBSCRIBE on a node without the slot gets: what the cluster upstream
// follows.
TEST_F(ClusterTopologyTest, SlotMigrationPushesSunsubscribe) {
  const std::string channel = "orders.migrating";
  const int slot = KeySlot(channel);
  const int from = cluster_->MasterOfSlot(slot);
  int to = -1;
  for (int master : cluster_->Masters()) {
    if (master != from) to = master;
  }
  ASSERT_GT(to, 0);

  Harness elsewhere;
  elsewhere.Open(OptionsFor(to));
  ASSERT_TRUE(elsewhere.WaitReady());
  std::optional<Copy> moved = elsewhere.Command({"SSUBSCRIBE", channel});
  ASSERT_TRUE(moved.has_value());
  ASSERT_EQ(moved->type, REDIS_REPLY_ERROR);
  int moved_slot = 0;
  RedisUrl::Node target;
  ASSERT_TRUE(ParseRedirect(moved->str, "MOVED", &moved_slot, &target)) << moved->str;
  EXPECT_EQ(moved_slot, slot);
  EXPECT_EQ(target.port, from);

  Harness h;
  h.Open(OptionsFor(from));
  ASSERT_TRUE(h.WaitReady());
  std::optional<Copy> sub = h.Command({"SSUBSCRIBE", channel});
  ASSERT_TRUE(sub.has_value());
  ASSERT_EQ(sub->type, REDIS_REPLY_ARRAY) << sub->str;
  EXPECT_EQ(cluster_->ShardNumSub(from, channel), 1);

  ASSERT_TRUE(cluster_->MoveSlot(slot, to).ok());
  std::vector<Copy> pushes = h.WaitPushes(1);
  ASSERT_EQ(pushes.size(), 1u);
  ASSERT_EQ(pushes[0].elements.size(), 3u);
  EXPECT_EQ(pushes[0].elements[0].str, "sunsubscribe");
  EXPECT_EQ(pushes[0].elements[1].str, channel);
  EXPECT_EQ(cluster_->ShardNumSub(from, channel), 0);
  ASSERT_TRUE(cluster_->MoveSlot(slot, from).ok());
}

}  // namespace
}  // namespace bridge::redis
