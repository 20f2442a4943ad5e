#ifndef BRIDGE_REDIS_SENTINEL_RESOLVER_H_
#define BRIDGE_REDIS_SENTINEL_RESOLVER_H_

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/redis/asio_hiredis.h"
#include "bridge/redis/master_resolver.h"
#include "bridge/redis/redis_connection.h"
#include "bridge/redis/redis_upstream_options.h"
#include "bridge/redis/redis_url.h"

namespace bridge::redis {

// Finds the master that Redis Sentinel names, and follows it. It asks the sentinels in
// turn `SENTINEL GET-MASTER-ADDR-BY-NAME` (the one that answered last first), at start,
// every options.sentinel_refresh_interval, and whenever a reconnector reports that the
// master failed it; and it follows `+switch-master` on a pub/sub connection to the
// sentinel that answered. When the master changes it retargets every watched Reconnector,
// which then moves its connection. Asking again on a timer matters: an event missed (the
// event connection down at the moment of a failover, a sentinel reconfigured by hand)
// would otherwise leave Bridge on a demoted node.
//
// It owns two connections to a sentinel: one for the questions, kept open between them,
// and one subscribed to the events. Owned by RedisUpstream and shared with its
// reconnectors and its own queued handlers. Everything but master_address() runs on the
// strand.
class SentinelResolver : public MasterResolver,
                         public std::enable_shared_from_this<SentinelResolver> {
 public:
  // `url` is a redis+sentinel:// URL.
  SentinelResolver(Strand strand, RedisUrl url, const RedisUpstreamOptions& options);
  SentinelResolver(const SentinelResolver&) = delete;
  SentinelResolver& operator=(const SentinelResolver&) = delete;

  // Start once; Stop closes the sentinel connections and forgets the reconnectors.
  void Start();
  void Stop();

  // MasterResolver.
  absl::StatusOr<RedisUrl> Master() override;
  void MasterFailed(const RedisUrl& master, const absl::Status& why) override;
  void Watch(std::weak_ptr<Reconnector> reconnector) override;

  // "host:port" of the master in use, empty while none is known. Any thread.
  std::string master_address() const ABSL_LOCKS_EXCLUDED(address_mu_);

 private:
  // What a question's hiredis callback needs; freed by that callback, which hiredis calls
  // exactly once (with a null reply when the context goes first).
  struct QueryCall {
    SentinelResolver* resolver;
    uint64_t round;
  };

  // Starts a round of questions unless one is under way (then another follows it).
  void DoQuery();
  // Asks the sentinel at next_, connecting to it first when needed.
  void DoAsk();
  void DoSend();
  static void OnQueryReply(redisAsyncContext* context, void* reply, void* privdata);
  void OnQueryReplied(uint64_t round, const redisReply* reply);
  void OnQueryTimeout(uint64_t round, const boost::system::error_code& ec);
  void OnQueryConnectionClosed(const absl::Status& status);
  // The sentinel asked did not say: the next one is asked, or the round ends.
  void SentinelFailed(const absl::Status& why);
  void EndRound(bool answered);
  void SetMaster(const RedisUrl::Node& master, const std::string& source);

  void DoOpenEvents();
  void OnEventsReady();
  void OnEventsClosed(const absl::Status& status);
  static void OnEvent(redisAsyncContext* context, void* reply, void* privdata);
  void OnEventReceived(redisAsyncContext* context, const redisReply* reply);

  void DoScheduleRefresh();
  void OnRefresh(const boost::system::error_code& ec);
  void Fail(const boost::system::error_code& ec, const char* what);

  std::string SentinelName(size_t index) const;
  RedisConnectionOptions ConnectionOptions() const;

  Strand strand_;
  const RedisUrl url_;
  const RedisUpstreamOptions options_;

  // Strand only.
  bool stopped_ = false;
  std::optional<RedisUrl::Node> master_;
  std::vector<std::weak_ptr<Reconnector>> watchers_;
  // The sentinel to ask first: the one that answered last.
  size_t next_ = 0;
  // The question connection, to sentinel query_index_.
  std::shared_ptr<RedisConnection> query_connection_;
  size_t query_index_ = 0;
  // A round asks each sentinel at most once, until one answers.
  bool round_active_ = false;
  bool round_again_ = false;
  uint64_t round_ = 0;
  size_t round_asked_ = 0;
  absl::Status round_error_;
  // Set while the sentinels could not be asked, so that the outage is logged once.
  bool unanswered_ = false;
  boost::asio::steady_timer query_timer_;
  // The event connection, to sentinel events_index_, and when one was last opened.
  std::shared_ptr<RedisConnection> events_connection_;
  size_t events_index_ = 0;
  absl::Time events_opened_at_ = absl::InfinitePast();
  boost::asio::steady_timer refresh_timer_;

  mutable absl::Mutex address_mu_;
  std::string address_ ABSL_GUARDED_BY(address_mu_);
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_SENTINEL_RESOLVER_H_
