#include "tests/support/redis_cluster.h"

#include <vector>

#include "gtest/gtest.h"

namespace bridge::testing {
namespace {

// The fixture itself: three masters, each with a replica, every slot served, and a kill
// that the cluster heals by promoting the replica.
TEST(RedisClusterTest, BuildsThreeReplicatedMastersAndFailsOver) {
  RedisCluster cluster;
  const std::vector<int> masters = cluster.Masters();
  ASSERT_EQ(masters.size(), 3u);
  for (int master : masters) EXPECT_GT(cluster.ReplicaOf(master), 0);
  for (int slot : {0, 5000, 10000, 16383}) {
    EXPECT_NE(cluster.MasterOfSlot(slot), -1) << "slot " << slot;
  }
  EXPECT_EQ(cluster.ShardNumSub(masters[0], "nobody"), 0);

  const int victim = cluster.MasterOfSlot(0);
  const int replica = cluster.ReplicaOf(victim);
  ASSERT_GT(replica, 0);
  cluster.Kill(victim);
  ASSERT_TRUE(cluster.WaitForHealthy());
  EXPECT_EQ(cluster.MasterOfSlot(0), replica);
}

}  // namespace
}  // namespace bridge::testing
