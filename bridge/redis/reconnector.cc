#include "bridge/redis/reconnector.h"

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "bridge/common/log.h"

namespace bridge::redis {

Reconnector::Reconnector(const char* name, Strand strand, RedisUrl url,
                         const RedisUpstreamOptions& options,
                         std::shared_ptr<MasterResolver> resolver)
    : name_(name),
      strand_(std::move(strand)),
      url_(std::move(url)),
      redacted_url_(url_.Redacted()),
      options_(options),
      resolver_(std::move(resolver)),
      target_(url_),
      target_redacted_(redacted_url_),
      retry_(strand_) {}

void Reconnector::Start(ReadyHandler on_ready, LostHandler on_lost) {
  if (stopped_) return;
  on_ready_ = std::move(on_ready);
  on_lost_ = std::move(on_lost);
  if (resolver_ != nullptr) resolver_->Watch(weak_from_this());
  DoConnect();
}

void Reconnector::Stop() {
  stopped_ = true;
  on_ready_ = nullptr;
  on_lost_ = nullptr;
  retry_pending_ = false;
  retry_.cancel();
  if (connection_) {
    connection_->Close();
    connection_.reset();
  }
  ready_ = false;
  SetStat([](ReconnectorStats& s) { s.connected = false; });
}

void Reconnector::Drop(absl::Status status) {
  if (stopped_ || !ready_ || connection_ == nullptr) return;
  OnClosed(std::move(status));
}

redisAsyncContext* Reconnector::context() const {
  return connection_ ? connection_->context() : nullptr;
}

ReconnectorStats Reconnector::Stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

void Reconnector::Retarget() {
  if (stopped_ || resolver_ == nullptr) return;
  absl::StatusOr<RedisUrl> master = resolver_->Master();
  if (!master.ok()) return;
  if (connection_ != nullptr && master->host == target_.host && master->port == target_.port) {
    return;
  }
  retry_pending_ = false;
  retry_.cancel();
  if (connection_ != nullptr) {
    connection_->Close();
    connection_.reset();
    if (ready_) {
      BRIDGE_LOG(Info, "redis: %s connection leaves %s for the new master %s", name_,
                 target_redacted_, master->Redacted());
      // Moving is no failure of the new master's: it starts from the shortest backoff.
      backoff_ = 0;
      LoseReady(absl::UnavailableError(
                    absl::StrCat("the master moved to ", master->host, ":", master->port)),
                /*count_backoff=*/false);
    }
  }
  // The owner may have stopped us when told of the loss.
  if (!stopped_) DoConnect();
}

void Reconnector::DoConnect() {
  if (connection_ != nullptr) {
    connection_->Close();
    connection_.reset();
  }
  if (resolver_ != nullptr) {
    absl::StatusOr<RedisUrl> master = resolver_->Master();
    if (!master.ok()) {
      // Nothing to try yet. The resolver retargets us as soon as it knows a master; the
      // retry only guards against missing that, and is no failed attempt.
      BRIDGE_LOG(Debug, "redis: %s connection waits for a master (%s)", name_,
                 master.status().message());
      DoArmRetry(options_.backoff_max);
      return;
    }
    target_ = *std::move(master);
    target_redacted_ = target_.Redacted();
  }
  connection_ = std::make_shared<RedisConnection>(
      strand_, target_,
      RedisConnectionOptions{.connect_timeout = options_.connect_timeout,
                             .tcp_keepalive = options_.tcp_keepalive,
                             .require_master = resolver_ != nullptr});
  connection_->Open(
      [self = shared_from_this()] { self->OnReady(); },
      [self = shared_from_this()](absl::Status status) { self->OnClosed(std::move(status)); });
}

void Reconnector::OnReady() {
  if (stopped_) return;
  ready_ = true;
  if (ever_ready_ || failures_ > 0) {
    BRIDGE_LOG(Info, "redis: %s connection to %s ready%s after %d failed attempts", name_,
               target_redacted_, ever_ready_ ? " again" : "", failures_);
  } else {
    BRIDGE_LOG(Info, "redis: %s connection to %s ready", name_, target_redacted_);
  }
  ever_ready_ = true;
  ready_since_ = absl::Now();
  failures_ = 0;
  last_logged_error_.clear();
  SetStat([](ReconnectorStats& s) { s.connected = true; });
  if (!on_ready_) return;
  // Held apart while it runs: the owner may Stop us from it, which drops the handlers.
  ReadyHandler on_ready = std::move(on_ready_);
  on_ready();
  if (!stopped_) on_ready_ = std::move(on_ready);
}

void Reconnector::OnClosed(absl::Status status) {
  if (stopped_) return;
  // Already finished; Close() only makes the end explicit before we let it go.
  connection_->Close();
  connection_.reset();
  // Without the status' payloads, which are for the owner.
  const std::string error =
      absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
  if (ready_) {
    LoseReady(status, /*count_backoff=*/true);
  } else {
    const absl::Time now = absl::Now();
    ++failures_;
    ++backoff_;
    SetStat([&](ReconnectorStats& s) {
      ++s.connect_failures;
      s.last_error = error;
      s.last_error_at = now;
    });
    // Once per outage, and again when the reason changes (refused, then bad password).
    if (error != last_logged_error_) {
      BRIDGE_LOG(Warning, "redis: %s connection to %s failed (%s); retrying", name_,
                 target_redacted_, error);
      last_logged_error_ = error;
    } else {
      BRIDGE_LOG(Debug, "redis: %s connection attempt %d to %s failed (%s)", name_, failures_,
                 target_redacted_, error);
    }
  }
  // The owner may have stopped us from on_lost.
  if (stopped_) return;
  // The master may have moved (a lost master, a replica that ROLE gave away).
  if (resolver_ != nullptr) resolver_->MasterFailed(target_, status);
  DoScheduleRetry();
}

void Reconnector::LoseReady(const absl::Status& status, bool count_backoff) {
  // Without the status' payloads, which are for the owner.
  const std::string error =
      absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
  const absl::Time now = absl::Now();
  ready_ = false;
  if (count_backoff) {
    // Only a connection that stayed up a while earns a fast reconnect: one Redis drops at
    // once, again and again, must not reconnect ~40 times a second.
    if (now - ready_since_ >= options_.backoff_reset_after) {
      backoff_ = 0;
    } else {
      ++backoff_;
    }
  }
  BRIDGE_LOG(Warning, "redis: %s connection to %s lost (%s); reconnecting", name_, target_redacted_,
             error);
  last_logged_error_ = error;
  SetStat([&](ReconnectorStats& s) {
    ++s.disconnects;
    s.last_error = error;
    s.last_error_at = now;
    s.connected = false;
  });
  if (on_lost_) {
    // Held apart while it runs, as on_ready is.
    LostHandler on_lost = std::move(on_lost_);
    on_lost(status);
    if (!stopped_) on_lost_ = std::move(on_lost);
  }
}

void Reconnector::DoScheduleRetry() {
  // Full jitter: uniform in [0, ceiling], the ceiling doubling per step up to the max.
  const int shift = std::min(backoff_, 20);
  const absl::Duration ceiling =
      std::min(options_.backoff_initial * (int64_t{1} << shift), options_.backoff_max);
  SetStat([&](ReconnectorStats& s) { s.retry_ceiling = ceiling; });
  const absl::Duration delay = absl::Nanoseconds(
      absl::Uniform<int64_t>(absl::IntervalClosed, rng_, 0, absl::ToInt64Nanoseconds(ceiling)));
  BRIDGE_LOG(Debug, "redis: %s reconnect in %s", name_, absl::FormatDuration(delay));
  DoArmRetry(delay);
}

void Reconnector::DoArmRetry(absl::Duration delay) {
  retry_pending_ = true;
  retry_.expires_after(absl::ToChronoNanoseconds(delay));
  retry_.async_wait(boost::asio::bind_executor(
      strand_,
      [self = shared_from_this()](const boost::system::error_code& ec) { self->OnRetry(ec); }));
}

void Reconnector::OnRetry(const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted || stopped_ || !retry_pending_) return;
  retry_pending_ = false;
  if (ec) return Fail(ec, "reconnect timer");
  DoConnect();
}

void Reconnector::Fail(const boost::system::error_code& ec, const char* what) {
  if (ec == boost::asio::error::operation_aborted) return;
  BRIDGE_LOG(Error, "redis: %s %s failed: %s", name_, what, ec.message());
}

}  // namespace bridge::redis
