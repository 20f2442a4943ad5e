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

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "bridge/hub/upstream.h"
#include "bridge/redis/asio_hiredis.h"
#include "bridge/redis/master_resolver.h"
#include "bridge/redis/reconnector.h"
#include "bridge/redis/redis_upstream_options.h"
#include "bridge/redis/redis_url.h"

namespace bridge::redis {

// The publish connection: every PUBLISH, bounded in count and bytes while unanswered,
// each with its own timeout; a publish that times out resets the connection, which
// hiredis would otherwise keep queueing behind. Reconnects through its Reconnector.
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

  // True while the connection is ready.
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  ReconnectorStats ConnectionStats() const { return reconnector_->Stats(); }
  // Publishes answered UNAVAILABLE at once for the in-flight bounds.
  uint64_t publishes_rejected() const { return rejected_.load(std::memory_order_relaxed); }
  // Times the connection was dropped for a publish without a reply in time.
  uint64_t publish_resets() const { return resets_.load(std::memory_order_acquire); }

 private:
  struct PendingPublish {
    hub::Upstream::PublishCallback done;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  // What a PUBLISH's hiredis callback needs; freed by that callback, which hiredis calls
  // exactly once (with a null reply if the context goes first).
  struct PublishCall {
    Publisher* publisher;
    uint64_t id;
  };

  void DoPublish(const std::string& channel, const std::string& payload, const std::string& key,
                 hub::Upstream::PublishCallback done);
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
  absl::flat_hash_map<uint64_t, PendingPublish> pending_;

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
