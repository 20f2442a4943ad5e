#ifndef BRIDGE_REDIS_CLUSTER_SLOT_H_
#define BRIDGE_REDIS_CLUSTER_SLOT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bridge::redis {

// Redis Cluster's 16384 hash slots.
inline constexpr int kClusterSlots = 16384;

// CRC16 (XMODEM: polynomial 0x1021, initial value 0), as Redis Cluster hashes keys.
uint16_t Crc16(std::string_view data);

// The hash slot of a key or a sharded channel name, as CLUSTER KEYSLOT computes it: when
// the name holds a '{' followed later by a '}' with at least one byte between them, only
// those bytes (the hash tag, from the first '{' to the first '}' after it) are hashed;
// otherwise the whole name is.
int KeySlot(std::string_view name);

// A hash tag, "{n}" with n in decimal, whose slot lies in one of `ranges` (inclusive, as
// ClusterShard holds them): appended to a name without braces, it lands the name on the
// master serving those slots. The smallest such n; empty when the ranges hold no slot.
std::string HashTagInRanges(const std::vector<std::pair<int, int>>& ranges);

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_CLUSTER_SLOT_H_
