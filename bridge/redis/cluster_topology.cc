#include "bridge/redis/cluster_topology.h"

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "bridge/redis/cluster_slot.h"

namespace bridge::redis {
namespace {

absl::string_view Text(const redisReply& r) {
  return (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS) && r.str != nullptr
             ? absl::string_view(r.str, r.len)
             : absl::string_view();
}

absl::Status Malformed(absl::string_view what) {
  return absl::InternalError(absl::StrCat("malformed ", what, " reply"));
}

// A node's announced address; an empty or "?" one means the node we asked.
std::string HostOr(absl::string_view host, const RedisUrl::Node& asked) {
  if (host.empty() || host == "?") return asked.host;
  return std::string(host);
}

// A field of a RESP2 flat map (key, value, key, value, ...), or null.
const redisReply* Field(const redisReply& map, absl::string_view key) {
  if (map.type != REDIS_REPLY_ARRAY) return nullptr;
  for (size_t i = 0; i + 1 < map.elements; i += 2) {
    if (Text(*map.element[i]) == key) return map.element[i + 1];
  }
  return nullptr;
}

bool ValidRange(long long start, long long end) {
  return start >= 0 && end >= start && end < kClusterSlots;
}

}  // namespace

ClusterTopology::ClusterTopology() : slot_shard_(kClusterSlots, -1) {}

absl::StatusOr<ClusterTopology> ClusterTopology::FromShards(const redisReply& reply,
                                                            const RedisUrl::Node& asked) {
  if (reply.type != REDIS_REPLY_ARRAY) return Malformed("CLUSTER SHARDS");
  ClusterTopology out;
  for (size_t i = 0; i < reply.elements; ++i) {
    const redisReply* slots = Field(*reply.element[i], "slots");
    const redisReply* nodes = Field(*reply.element[i], "nodes");
    if (slots == nullptr || nodes == nullptr || slots->type != REDIS_REPLY_ARRAY ||
        nodes->type != REDIS_REPLY_ARRAY || slots->elements % 2 != 0) {
      return Malformed("CLUSTER SHARDS");
    }
    ClusterShard shard;
    for (size_t s = 0; s < slots->elements; s += 2) {
      const long long start = slots->element[s]->integer;
      const long long end = slots->element[s + 1]->integer;
      if (!ValidRange(start, end)) return Malformed("CLUSTER SHARDS");
      shard.slots.emplace_back(static_cast<int>(start), static_cast<int>(end));
    }
    bool found = false;
    for (size_t n = 0; n < nodes->elements && !found; ++n) {
      const redisReply& node = *nodes->element[n];
      const redisReply* role = Field(node, "role");
      const redisReply* health = Field(node, "health");
      if (role == nullptr || Text(*role) != "master") continue;
      if (health != nullptr && (Text(*health) == "fail" || Text(*health) == "failed")) continue;
      const redisReply* port = Field(node, "port");
      const redisReply* endpoint = Field(node, "endpoint");
      const redisReply* ip = Field(node, "ip");
      const redisReply* id = Field(node, "id");
      if (port == nullptr || port->type != REDIS_REPLY_INTEGER) continue;
      absl::string_view host = endpoint != nullptr ? Text(*endpoint) : absl::string_view();
      if ((host.empty() || host == "?") && ip != nullptr) host = Text(*ip);
      shard.master = RedisUrl::Node{HostOr(host, asked), static_cast<int>(port->integer)};
      if (id != nullptr) shard.master_id = std::string(Text(*id));
      found = true;
    }
    if (found && !shard.slots.empty()) out.Add(std::move(shard));
  }
  return out;
}

absl::StatusOr<ClusterTopology> ClusterTopology::FromSlots(const redisReply& reply,
                                                           const RedisUrl::Node& asked) {
  if (reply.type != REDIS_REPLY_ARRAY) return Malformed("CLUSTER SLOTS");
  ClusterTopology out;
  for (size_t i = 0; i < reply.elements; ++i) {
    const redisReply& range = *reply.element[i];
    if (range.type != REDIS_REPLY_ARRAY || range.elements < 3 ||
        range.element[0]->type != REDIS_REPLY_INTEGER ||
        range.element[1]->type != REDIS_REPLY_INTEGER) {
      return Malformed("CLUSTER SLOTS");
    }
    const long long start = range.element[0]->integer;
    const long long end = range.element[1]->integer;
    const redisReply& master = *range.element[2];
    if (!ValidRange(start, end) || master.type != REDIS_REPLY_ARRAY || master.elements < 2 ||
        master.element[1]->type != REDIS_REPLY_INTEGER) {
      return Malformed("CLUSTER SLOTS");
    }
    ClusterShard shard;
    shard.master = RedisUrl::Node{HostOr(Text(*master.element[0]), asked),
                                  static_cast<int>(master.element[1]->integer)};
    if (master.elements > 2) shard.master_id = std::string(Text(*master.element[2]));
    shard.slots.emplace_back(static_cast<int>(start), static_cast<int>(end));
    out.Add(std::move(shard));
  }
  return out;
}

void ClusterTopology::Add(ClusterShard shard) {
  int index = -1;
  for (size_t i = 0; i < shards_.size(); ++i) {
    if (shards_[i].master == shard.master) index = static_cast<int>(i);
  }
  if (index < 0) {
    index = static_cast<int>(shards_.size());
    shards_.push_back(ClusterShard{shard.master, shard.master_id, {}});
  }
  for (const auto& [start, end] : shard.slots) {
    shards_[index].slots.emplace_back(start, end);
    for (int slot = start; slot <= end; ++slot) slot_shard_[slot] = static_cast<int16_t>(index);
  }
}

const ClusterShard* ClusterTopology::ShardOfSlot(int slot) const {
  if (slot < 0 || slot >= kClusterSlots || slot_shard_[slot] < 0) return nullptr;
  return &shards_[slot_shard_[slot]];
}

void ClusterTopology::Move(int slot, const RedisUrl::Node& master) {
  if (slot < 0 || slot >= kClusterSlots) return;
  // The old shard's ranges keep the slot listed; lookups go through slot_shard_ alone.
  Add(ClusterShard{master, "", {{slot, slot}}});
}

int ClusterTopology::slots_served() const {
  int served = 0;
  for (int16_t index : slot_shard_) served += index >= 0 ? 1 : 0;
  return served;
}

bool ParseRedirect(std::string_view error, std::string_view kind, int* slot, RedisUrl::Node* node) {
  absl::string_view text(error.data(), error.size());
  const absl::string_view prefix(kind.data(), kind.size());
  if (!absl::ConsumePrefix(&text, prefix) || !absl::ConsumePrefix(&text, " ")) return false;
  const size_t space = text.find(' ');
  if (space == absl::string_view::npos) return false;
  if (!absl::SimpleAtoi(text.substr(0, space), slot) || *slot < 0 || *slot >= kClusterSlots) {
    return false;
  }
  const absl::string_view address = text.substr(space + 1);
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 1 || port > 65535) {
    return false;
  }
  absl::string_view host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  *node = RedisUrl::Node{std::string(host), port};
  return true;
}

}  // namespace bridge::redis
