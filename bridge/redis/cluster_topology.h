#ifndef BRIDGE_REDIS_CLUSTER_TOPOLOGY_H_
#define BRIDGE_REDIS_CLUSTER_TOPOLOGY_H_

#include <hiredis/hiredis.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "bridge/redis/redis_url.h"

namespace bridge::redis {

// One master of a Redis Cluster and the hash slots it serves.
struct ClusterShard {
  RedisUrl::Node master;
  std::string master_id;
  // Inclusive ranges, as Redis gives them.
  std::vector<std::pair<int, int>> slots;
};

// Which master serves each hash slot, as one node of the cluster sees it. A plain value
// type, replaced whole on each refresh.
class ClusterTopology {
 public:
  // No slot served.
  ClusterTopology();

  // From CLUSTER SHARDS (Redis 7): a shard's master is its node with role "master" whose
  // health is not "fail"; shards without slots or without such a master are left out.
  // `asked` is the node that answered, for nodes that announce no address of their own.
  static absl::StatusOr<ClusterTopology> FromShards(const redisReply& reply,
                                                    const RedisUrl::Node& asked);
  // From CLUSTER SLOTS (any cluster version): each range's first node is its master.
  static absl::StatusOr<ClusterTopology> FromSlots(const redisReply& reply,
                                                   const RedisUrl::Node& asked);

  const std::vector<ClusterShard>& shards() const { return shards_; }
  // The shard serving `slot`, or null.
  const ClusterShard* ShardOfSlot(int slot) const;
  // Records what a MOVED redirection says: `slot` is now served by `master`.
  void Move(int slot, const RedisUrl::Node& master);
  // How many of the 16384 slots have a master.
  int slots_served() const;

 private:
  // Adds a shard, or merges its slots into the shard of the same master.
  void Add(ClusterShard shard);

  std::vector<ClusterShard> shards_;
  // Index into shards_ per slot, -1 for none.
  std::vector<int16_t> slot_shard_;
};

// A MOVED (or ASK) redirection's slot and target node, parsed from Redis' error text
// ("MOVED 3999 127.0.0.1:6381"); false for any other text.
bool ParseRedirect(std::string_view error, std::string_view kind, int* slot, RedisUrl::Node* node);

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_CLUSTER_TOPOLOGY_H_
