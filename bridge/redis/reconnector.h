#ifndef BRIDGE_REDIS_RECONNECTOR_H_
#define BRIDGE_REDIS_RECONNECTOR_H_

#include <hiredis/async.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/redis/asio_hiredis.h"
#include "bridge/redis/master_resolver.h"
#include "bridge/redis/redis_connection.h"
#include "bridge/redis/redis_upstream_options.h"
#include "bridge/redis/redis_url.h"

namespace bridge::redis {

struct ReconnectorStats {
  bool connected = false;
  // Attempts that failed, and ready connections lost, since Start.
  uint64_t connect_failures = 0;
  uint64_t disconnects = 0;
  // The most recent error, empty if none, and when it came.
  std::string last_error;
  absl::Time last_error_at = absl::InfinitePast();
  // The ceiling of the most recent reconnect delay (the delay is uniform below it).
  absl::Duration retry_ceiling;
};

// Keeps one Redis connection up: connects, and after every failed attempt or lost
// connection connects again, forever, with full-jitter backoff, until Stop(). It logs
// the outages and tells its owner of each ready connection and each lost one; the owner
// knows what the connection carries (SubscriberConnection, Publisher).
//
// With a MasterResolver (Sentinel) the address is not fixed: each attempt goes where the
// resolver says the master is, must pass ROLE, and reports its failures to the resolver;
// Retarget() moves a connection to a master that changed.
//
// Owned by one part and shared with its own queued handlers. Every method but Stats()
// runs on the strand; the owner's handlers are called from it, never after Stop(), which
// they may call.
class Reconnector : public std::enable_shared_from_this<Reconnector> {
 public:
  using ReadyHandler = absl::AnyInvocable<void()>;
  // A ready connection was lost (closed already), with RedisConnection's status.
  using LostHandler = absl::AnyInvocable<void(const absl::Status& status)>;

  // `name` ("subscriber", "publisher") is for the logs. Without a resolver every attempt
  // goes to `url`; with one, to the resolver's master.
  Reconnector(const char* name, Strand strand, RedisUrl url, const RedisUpstreamOptions& options,
              std::shared_ptr<MasterResolver> resolver = nullptr);
  Reconnector(const Reconnector&) = delete;
  Reconnector& operator=(const Reconnector&) = delete;

  void Start(ReadyHandler on_ready, LostHandler on_lost);
  // Closes the connection, cancels the retry and forgets the handlers. Idempotent.
  void Stop();
  // Drops the ready connection as lost with `status` (the owner found it stalled), and
  // reconnects; does nothing when none is ready.
  void Drop(absl::Status status);
  // The resolver's master changed: a connection ready (or being made) elsewhere is lost
  // (the owner hears of it as of any loss) and a new one made there at once, without
  // backoff. Does nothing when already there, or without a resolver.
  void Retarget();

  // The ready connection's context for commands, null while there is none.
  redisAsyncContext* context() const;
  bool ready() const { return ready_; }
  // Any thread.
  ReconnectorStats Stats() const ABSL_LOCKS_EXCLUDED(stats_mu_);

 private:
  void DoConnect();
  void OnReady();
  void OnClosed(absl::Status status);
  // The ready connection is gone (closed already): counts, logs and tells the owner.
  void LoseReady(const absl::Status& status, bool count_backoff);
  void DoScheduleRetry();
  void DoArmRetry(absl::Duration delay);
  void OnRetry(const boost::system::error_code& ec);
  void Fail(const boost::system::error_code& ec, const char* what);
  template <typename F>
  void SetStat(F&& change) ABSL_LOCKS_EXCLUDED(stats_mu_) {
    absl::MutexLock lock(&stats_mu_);
    change(stats_);
  }

  const char* const name_;
  Strand strand_;
  const RedisUrl url_;
  const std::string redacted_url_;
  const RedisUpstreamOptions options_;
  const std::shared_ptr<MasterResolver> resolver_;
  ReadyHandler on_ready_;
  LostHandler on_lost_;

  // Strand only.
  std::shared_ptr<RedisConnection> connection_;
  // Where connection_ goes (url_ without a resolver), and that for the logs.
  RedisUrl target_;
  std::string target_redacted_;
  bool stopped_ = false;
  // A retry is armed and not cancelled since: a timer cancelled too late still runs its
  // handler, which must then do nothing.
  bool retry_pending_ = false;
  bool ready_ = false;
  bool ever_ready_ = false;
  absl::Time ready_since_;
  // Failed attempts since the last ready connection, for the logs.
  int failures_ = 0;
  // The reconnect delay's exponent: it grows with every failed attempt and every
  // connection lost soon after it was ready, and resets only when one stayed ready for
  // backoff_reset_after.
  int backoff_ = 0;
  std::string last_logged_error_;
  boost::asio::steady_timer retry_;
  absl::BitGen rng_;

  mutable absl::Mutex stats_mu_;
  ReconnectorStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_RECONNECTOR_H_
