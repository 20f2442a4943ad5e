#ifndef BRIDGE_HUB_HISTORY_H_
#define BRIDGE_HUB_HISTORY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace bridge::hub {

// Durable channels keep a bounded history in the broker (Redis Streams): each message
// published on one gets the next offset of the channel, counted from 1, and the epoch of
// the history, which changes whenever the history was lost (the broker restarted without
// persistence, the channel stayed idle past its TTL). These are the types the hub and its
// upstream exchange about them.

// A place in a durable channel: the offset of a message and the epoch it belongs to.
struct StreamPosition {
  uint64_t offset = 0;
  std::string epoch;

  friend bool operator==(const StreamPosition& a, const StreamPosition& b) {
    return a.offset == b.offset && a.epoch == b.epoch;
  }
};

// How much history a durable channel keeps: about the last `max_len` messages (the
// broker may keep a few more), all dropped once the channel saw no publish for `ttl`.
struct HistoryPolicy {
  uint64_t max_len = 1000;
  absl::Duration ttl = absl::Hours(24);
};

// A publish to a durable channel.
struct DurablePublish {
  std::string channel;
  std::string payload;
  // An idempotency key, empty for none (see Upstream::PublishWithKey).
  std::string key;
  HistoryPolicy policy;
};

struct DurablePublished {
  // What the broker's PUBLISH returned (0 for a duplicate).
  int64_t receivers = 0;
  // The message's place; for a duplicate, that of the message first published with the
  // key.
  StreamPosition position;
  bool duplicate = false;
};

// A read of a durable channel's history.
struct HistoryQuery {
  std::string channel;
  // Set: the entries with an offset above it, oldest first. Unset: the latest `limit`
  // entries, oldest first.
  std::optional<uint64_t> after;
  // At most this many entries.
  size_t limit = 1000;
};

struct HistoryEntry {
  uint64_t offset = 0;
  std::string payload;
};

struct HistoryPage {
  // The channel's epoch and the offset of its latest message; empty and 0 when the
  // channel has no history (never published, or expired).
  std::string epoch;
  uint64_t top = 0;
  // Contiguous offsets, oldest first.
  std::vector<HistoryEntry> entries;
};

}  // namespace bridge::hub

#endif  // BRIDGE_HUB_HISTORY_H_
