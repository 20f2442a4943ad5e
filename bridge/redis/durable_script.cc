#include "bridge/redis/durable_script.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace bridge::redis {
namespace {

// The library. Every key it touches comes in KEYS, as Redis Cluster requires, and every
// one of them shares the channel's slot (DurableKeysFor), which SPUBLISH needs too.
//
// bridge_publish: the epoch is made when the meta hash is missing (never published, or
// expired with its TTL, or a Redis restarted without persistence): TIME plus a random
// number, so that no two creations share one; the old stream, if any outlived its meta,
// is dropped with it, so offsets start from 1 again and stream IDs stay increasing. The
// stream ID is "<offset>-0", which lets a read start after an offset without a lookup.
// The envelope is byte for byte hub::SealEnvelope's: "\x1f" "bridge1" "\x1f" epoch "\x1f"
// offset "\x1f" payload.
//
// bridge_history reads only (flag no-writes), so FCALL_RO may run it, on a replica too.
constexpr std::string_view kLibrary = R"lua(#!lua name=bridge

local SEP = '\031'

local function publish(keys, args)
  local meta, stream, dedup = keys[1], keys[2], keys[3]
  local channel, payload = args[1], args[2]
  local max_len, ttl_ms, sharded, window_ms = args[3], args[4], args[5], args[6]
  if dedup then
    local seen = redis.call('GET', dedup)
    if seen then
      local at = string.find(seen, ':', 1, true)
      return {tonumber(string.sub(seen, 1, at - 1)), string.sub(seen, at + 1), 0, 1}
    end
  end
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    local now = redis.call('TIME')
    epoch = string.format('%s.%06d.%x', now[1], tonumber(now[2]), math.random(0, 2147483646))
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'epoch', epoch)
  end
  local offset = redis.call('HINCRBY', meta, 'offset', 1)
  local offset_text = string.format('%d', offset)
  redis.call('XADD', stream, 'MAXLEN', '~', max_len, offset_text .. '-0', 'p', payload)
  redis.call('PEXPIRE', meta, ttl_ms)
  redis.call('PEXPIRE', stream, ttl_ms)
  if dedup then
    redis.call('SET', dedup, offset_text .. ':' .. epoch, 'PX', window_ms)
  end
  local sealed = SEP .. 'bridge1' .. SEP .. epoch .. SEP .. offset_text .. SEP .. payload
  local receivers = redis.call(sharded == '1' and 'SPUBLISH' or 'PUBLISH', channel, sealed)
  return {offset, epoch, receivers, 0}
end

local function history(keys, args)
  local state = redis.call('HMGET', keys[1], 'epoch', 'offset')
  if not state[1] then
    return {'', 0}
  end
  local top = tonumber(state[2])
  -- As text: a Lua number of 19 digits would reach Redis in exponent form.
  local limit = args[2]
  local out = {state[1], top}
  local entries
  if args[1] == '' then
    entries = redis.call('XREVRANGE', keys[2], '+', '-', 'COUNT', limit)
    for i = #entries, 1, -1 do
      out[#out + 1] = tonumber(string.match(entries[i][1], '^%d+'))
      out[#out + 1] = entries[i][2][2]
    end
    return out
  end
  if tonumber(args[1]) >= top then
    return out
  end
  entries = redis.call('XRANGE', keys[2], '(' .. args[1] .. '-0', '+', 'COUNT', limit)
  for i = 1, #entries do
    out[#out + 1] = tonumber(string.match(entries[i][1], '^%d+'))
    out[#out + 1] = entries[i][2][2]
  end
  return out
end

redis.register_function('bridge_publish', publish)
redis.register_function{function_name = 'bridge_history', callback = history,
                        flags = {'no-writes'}}
)lua";

std::string_view Text(const redisReply& r) {
  return r.str != nullptr ? std::string_view(r.str, r.len) : std::string_view();
}

// Debian's abseil has an absl::string_view of its own, not std::string_view.
absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status ErrorReply(std::string_view function, std::string_view error) {
  const std::string text = absl::StrCat("Redis refused ", A(function), ": ", A(error));
  if (absl::StartsWith(A(error), "NOPERM")) return absl::PermissionDeniedError(text);
  // The node is busy, loading, out of memory, a replica, or the slot between owners: may
  // pass.
  for (std::string_view prefix : {"LOADING", "BUSY", "OOM", "READONLY", "MASTERDOWN", "TRYAGAIN",
                                  "CLUSTERDOWN", "MOVED", "ASK"}) {
    if (absl::StartsWith(A(error), A(prefix))) return absl::UnavailableError(text);
  }
  return absl::FailedPreconditionError(text);
}

absl::Status Unexpected(std::string_view function) {
  return absl::InternalError(absl::StrCat("Redis ", A(function), ": unexpected reply"));
}

}  // namespace

std::string_view DurableLibrarySource() { return kLibrary; }

std::vector<std::string> DurableLibraryLoadCommand() {
  return {"FUNCTION", "LOAD", "REPLACE", std::string(kLibrary)};
}

absl::StatusOr<std::string> DurableHashTag(std::string_view channel) {
  std::string_view tag = channel;
  const size_t open = channel.find('{');
  if (open != std::string_view::npos) {
    const size_t close = channel.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      tag = channel.substr(open + 1, close - open - 1);
    }
  }
  if (tag.empty()) return absl::InvalidArgumentError("an empty channel name cannot be durable");
  if (tag.find('}') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "channel \"", A(channel),
        "\" cannot be durable: its keys need a Redis hash tag of the channel's slot, and a "
        "name with '}' outside a \"{...}\" tag cannot carry one"));
  }
  return std::string(tag);
}

absl::StatusOr<DurableKeys> DurableKeysFor(std::string_view channel) {
  absl::StatusOr<std::string> tag = DurableHashTag(channel);
  if (!tag.ok()) return tag.status();
  return DurableKeys{.meta = absl::StrCat("bridge:meta:{", *tag, "}:", A(channel)),
                     .stream = absl::StrCat("bridge:stream:{", *tag, "}:", A(channel))};
}

absl::StatusOr<std::string> DurableIdempotencyKey(std::string_view channel, std::string_view key) {
  absl::StatusOr<std::string> tag = DurableHashTag(channel);
  if (!tag.ok()) return tag.status();
  return absl::StrCat("bridge:dkey:{", *tag, "}:", channel.size(), ":", A(channel), ":", A(key));
}

absl::StatusOr<std::vector<std::string>> DurablePublishCommand(const hub::DurablePublish& request,
                                                               bool sharded,
                                                               absl::Duration key_window) {
  absl::StatusOr<DurableKeys> keys = DurableKeysFor(request.channel);
  if (!keys.ok()) return keys.status();
  if (request.policy.max_len == 0 || request.policy.ttl < absl::Milliseconds(1) ||
      request.policy.ttl == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        "a durable channel keeps at least one message, for a finite TTL of at least 1ms");
  }
  std::vector<std::string> argv = {"FCALL", std::string(kDurablePublishFunction),
                                   request.key.empty() ? "2" : "3", std::move(keys->meta),
                                   std::move(keys->stream)};
  if (!request.key.empty()) {
    absl::StatusOr<std::string> dedup = DurableIdempotencyKey(request.channel, request.key);
    if (!dedup.ok()) return dedup.status();
    argv.push_back(*std::move(dedup));
  }
  argv.push_back(request.channel);
  argv.push_back(request.payload);
  argv.push_back(absl::StrCat(request.policy.max_len));
  argv.push_back(absl::StrCat(absl::ToInt64Milliseconds(request.policy.ttl)));
  argv.push_back(sharded ? "1" : "0");
  argv.push_back(absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(key_window))));
  return argv;
}

absl::StatusOr<std::vector<std::string>> HistoryCommand(const hub::HistoryQuery& query) {
  absl::StatusOr<DurableKeys> keys = DurableKeysFor(query.channel);
  if (!keys.ok()) return keys.status();
  if (query.limit == 0) return absl::InvalidArgumentError("a history read wants at least 1 entry");
  return std::vector<std::string>{
      "FCALL_RO", std::string(kDurableHistoryFunction), "2", std::move(keys->meta),
      std::move(keys->stream), query.after ? absl::StrCat(*query.after) : std::string(),
      // COUNT takes a signed 64-bit number.
      absl::StrCat(std::min<uint64_t>(query.limit, std::numeric_limits<int64_t>::max()))};
}

bool IsFunctionMissing(std::string_view error) {
  return absl::StrContains(A(error), "Function not found") ||
         absl::StrContains(A(error), "function not found");
}

absl::StatusOr<hub::DurablePublished> ParseDurablePublishReply(const redisReply& reply) {
  if (reply.type == REDIS_REPLY_ERROR) return ErrorReply(kDurablePublishFunction, Text(reply));
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 4 ||
      reply.element[0]->type != REDIS_REPLY_INTEGER ||
      reply.element[1]->type != REDIS_REPLY_STRING ||
      reply.element[2]->type != REDIS_REPLY_INTEGER ||
      reply.element[3]->type != REDIS_REPLY_INTEGER || reply.element[0]->integer <= 0) {
    return Unexpected(kDurablePublishFunction);
  }
  hub::DurablePublished out;
  out.position.offset = static_cast<uint64_t>(reply.element[0]->integer);
  out.position.epoch = std::string(Text(*reply.element[1]));
  out.receivers = reply.element[2]->integer;
  out.duplicate = reply.element[3]->integer != 0;
  return out;
}

absl::StatusOr<hub::HistoryPage> ParseHistoryReply(const redisReply& reply) {
  if (reply.type == REDIS_REPLY_ERROR) return ErrorReply(kDurableHistoryFunction, Text(reply));
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 2 || reply.elements % 2 != 0 ||
      reply.element[0]->type != REDIS_REPLY_STRING ||
      reply.element[1]->type != REDIS_REPLY_INTEGER || reply.element[1]->integer < 0) {
    return Unexpected(kDurableHistoryFunction);
  }
  hub::HistoryPage page;
  page.epoch = std::string(Text(*reply.element[0]));
  page.top = static_cast<uint64_t>(reply.element[1]->integer);
  page.entries.reserve((reply.elements - 2) / 2);
  for (size_t i = 2; i < reply.elements; i += 2) {
    const redisReply& offset = *reply.element[i];
    const redisReply& payload = *reply.element[i + 1];
    if (offset.type != REDIS_REPLY_INTEGER || offset.integer <= 0 ||
        payload.type != REDIS_REPLY_STRING) {
      return Unexpected(kDurableHistoryFunction);
    }
    page.entries.push_back(hub::HistoryEntry{.offset = static_cast<uint64_t>(offset.integer),
                                             .payload = std::string(Text(payload))});
  }
  return page;
}

}  // namespace bridge::redis
