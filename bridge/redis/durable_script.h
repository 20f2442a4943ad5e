#ifndef BRIDGE_REDIS_DURABLE_SCRIPT_H_
#define BRIDGE_REDIS_DURABLE_SCRIPT_H_

#include <hiredis/hiredis.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bridge/hub/history.h"

namespace bridge::redis {

// Durable channels on Redis: a Redis 7 Function library, `bridge`, whose functions keep a
// channel's history in a Stream and publish each message sealed in its envelope
// (hub/durable_envelope.h), in one atomic call. Bridge loads it (FUNCTION LOAD REPLACE)
// on every publish connection, so any other service may publish durably with
// `FCALL bridge_publish`; docs/DURABLE.md ("In Redis") describes the keys, the arguments
// and the replies.
//
// Every key of a channel carries a hash tag that lands it in the channel's own slot, the
// one Redis Cluster sends the channel's SPUBLISH to, so one FCALL on that slot's master
// both writes the history and publishes.

inline constexpr std::string_view kDurableLibraryName = "bridge";
inline constexpr std::string_view kDurablePublishFunction = "bridge_publish";
inline constexpr std::string_view kDurableHistoryFunction = "bridge_history";

// The library's source, for FUNCTION LOAD REPLACE.
std::string_view DurableLibrarySource();
// The command that loads it.
std::vector<std::string> DurableLibraryLoadCommand();

// The keys of one durable channel.
struct DurableKeys {
  // A hash: `epoch` and `offset` (the latest one given).
  std::string meta;
  // The Stream of the kept messages, each with ID "<offset>-0" and the payload in field
  // "p".
  std::string stream;
};

// The hash tag content a durable channel's keys carry: the channel's own hash tag when it
// has one (a non-empty "{...}", as Redis Cluster reads it), else the whole name. Either
// way a key "...{T}..." hashes to the channel's slot. INVALID_ARGUMENT when that content
// holds a '}' (a channel like "a}b" or "x{}y"), which no hash tag can carry, and for the
// empty channel.
absl::StatusOr<std::string> DurableHashTag(std::string_view channel);

// "bridge:meta:{T}:<channel>" and "bridge:stream:{T}:<channel>"; INVALID_ARGUMENT as
// DurableHashTag.
absl::StatusOr<DurableKeys> DurableKeysFor(std::string_view channel);
// The idempotency key of a durable publish with `key`:
// "bridge:dkey:{T}:<channel length>:<channel>:<key>" (the length first, so that no other
// channel and key make the same name).
absl::StatusOr<std::string> DurableIdempotencyKey(std::string_view channel, std::string_view key);

// FCALL bridge_publish for `request`; `sharded` publishes with SPUBLISH. `key_window` is
// how long Redis remembers the idempotency key, if any. INVALID_ARGUMENT for a channel
// without keys (DurableKeysFor) or a policy of no history.
absl::StatusOr<std::vector<std::string>> DurablePublishCommand(const hub::DurablePublish& request,
                                                               bool sharded,
                                                               absl::Duration key_window);
// FCALL_RO bridge_history for `query`; INVALID_ARGUMENT as DurableKeysFor, or for a limit
// of 0.
absl::StatusOr<std::vector<std::string>> HistoryCommand(const hub::HistoryQuery& query);

// Whether an error reply to an FCALL says that the library is not loaded (a Redis
// restarted without persistence, a FUNCTION FLUSH): loading it and calling again helps.
bool IsFunctionMissing(std::string_view error);

// The replies of the two functions. A Redis error reply is FAILED_PRECONDITION with
// Redis' words, PERMISSION_DENIED for NOPERM, UNAVAILABLE for a state that may pass (a node
// loading, busy, out of memory, read-only, a slot between owners); a reply of another
// shape, INTERNAL.
absl::StatusOr<hub::DurablePublished> ParseDurablePublishReply(const redisReply& reply);
absl::StatusOr<hub::HistoryPage> ParseHistoryReply(const redisReply& reply);

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_DURABLE_SCRIPT_H_
