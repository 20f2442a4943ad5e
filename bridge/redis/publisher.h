#ifndef BRIDGE_REDIS_PUBLISHER_H_
#define BRIDGE_REDIS_PUBLISHER_H_

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bridge/hub/history.h"
#include "bridge/hub/upstream.h"
#include "bridge/redis/asio_hiredis.h"
#include "bridge/redis/master_resolver.h"
#include "bridge/redis/reconnector.h"
#include "bridge/redis/redis_upstream_options.h"
#include "bridge/redis/redis_url.h"

namespace bridge::redis {

// The publish connection: every PUBLISH, and the FCALLs of durable channels
// (durable_script.h), bounded in count and bytes while unanswered, each with its own
// timeout; a command that times out resets the connection, which hiredis would otherwise
// keep queueing behind. Reconnects through its Reconnector, and loads the durable
// channels' library on each new connection before it is marked ready (a Redis restarted
// without persistence has lost it); an FCALL answered "Function not found" (a FUNCTION
// FLUSH since) loads it and is sent again, once, within the same timeout.
//
// Owned by RedisUpstream and shared with its own queued handlers. Publish, ready and the
// counters are safe from any thread; Start and Stop run on the strand. Every publish is
// answered exactly once, by Stop() at the latest.
class Publisher : public std::enable_shared_from_this<Publisher> {
 public:
  // With a resolver, the connection goes to its master rather than to `url`.
  Publisher(Strand strand, RedisUrl url, const RedisUpstreamOptions& options,
            std::shared_ptr<MasterResolver> resolver = nullptr);
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Strand only. Start once; Stop, idempotent, answers the pending publishes UNAVAILABLE.
  void Start();
  void Stop();

  void Publish(std::string channel, std::string payload, hub::Upstream::PublishCallback done) {
    Publish(std::move(channel), std::move(payload), std::string(), std::move(done));
  }
  // With a `key` (not empty), publishes at most once per channel and key within
  // options.publish_key_window: one script on Redis sets the key and publishes, or
  // answers hub::Upstream::kAlreadyPublished when the key is already set.
  void Publish(std::string channel, std::string payload, std::string key,
               hub::Upstream::PublishCallback done);
  // FCALL bridge_publish (classic PUBLISH), bounded as a publish. INVALID_ARGUMENT at
  // once for a channel that cannot be durable (DurableKeysFor). `done` runs on any thread.
  void PublishDurable(hub::DurablePublish request, hub::Upstream::DurablePublishCallback done);
  // FCALL_RO bridge_history, bounded as a publish. `done` runs on any thread: the strand
  // for a reply, the caller's for a fast failure.
  void ReadHistory(hub::HistoryQuery query, hub::Upstream::HistoryCallback done);

  // True while the connection is ready.
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  ReconnectorStats ConnectionStats() const { return reconnector_->Stats(); }
  // Publishes answered UNAVAILABLE at once for the in-flight bounds.
  uint64_t publishes_rejected() const { return rejected_.load(std::memory_order_relaxed); }
  // Times the connection was dropped for a publish without a reply in time.
  uint64_t publish_resets() const { return resets_.load(std::memory_order_acquire); }

 private:
  // Answers a command exactly once: its reply (an error reply included), valid only during
  // the call, or the status of a command that got none.
  using ReplyHandler = absl::AnyInvocable<void(absl::StatusOr<const redisReply*> reply)>;

  struct PendingCommand {
    // For the logs and errors: "PUBLISH", "FCALL bridge_publish", ...
    std::string what;
    ReplyHandler done;
    std::unique_ptr<boost::asio::steady_timer> timer;
    // An FCALL, kept to be sent again (once) when Redis answers that the library is
    // missing; empty for other commands, and once sent again.
    std::vector<std::string> fcall;
  };

  // What a command's hiredis callback needs; freed by that callback, which hiredis calls
  // exactly once (with a null reply if the context goes first).
  struct PublishCall {
    Publisher* publisher;
    uint64_t id;
  };

  // Any thread: the in-flight bounds for `bytes`, then DoCommand on the strand. An FCALL
  // (`fcall`) may be sent twice, see PendingCommand.
  void Submit(std::string what, std::vector<std::string> argv, bool fcall, size_t bytes,
              ReplyHandler done);
  void DoCommand(std::string what, std::vector<std::string> argv, bool fcall, ReplyHandler done);
  // Sends `argv` on `context` for the pending command `id`; false when hiredis refused.
  bool Send(redisAsyncContext* context, uint64_t id, const std::vector<std::string>& argv);
  // FUNCTION LOAD REPLACE of the durable channels' library; commands sent after it run
  // after it (one connection, in order). A failure is logged, and the FCALLs fail.
  void LoadLibrary(redisAsyncContext* context);
  static void OnLibraryLoaded(redisAsyncContext* context, void* reply, void* privdata);
  static void OnReply(redisAsyncContext* context, void* reply, void* privdata);
  void OnReplied(uint64_t id, const redisReply* reply);
  void OnTimeout(uint64_t id, const boost::system::error_code& ec);
  void DoReset(const std::string& why);
  absl::Status Reserve(size_t bytes);
  void Release(size_t bytes);
  void Fail(const boost::system::error_code& ec, const char* what);

  Strand strand_;
  const RedisUpstreamOptions options_;
  const std::shared_ptr<Reconnector> reconnector_;

  // Strand only.
  bool stopped_ = false;
  uint64_t last_publish_id_ = 0;
  absl::flat_hash_map<uint64_t, PendingCommand> pending_;

  // Read from any thread for Publish's fast failure.
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  // Publishes accepted by Publish and not yet answered; see Reserve.
  std::atomic<int> in_flight_{0};
  std::atomic<size_t> bytes_in_flight_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> resets_{0};
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_PUBLISHER_H_
