#include "bridge/redis/reconnector.h"

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "bridge/common/log.h"

namespace bridge::redis {

Reconnector::Reconnector(const char* name, Strand strand, RedisUrl url,
                         const RedisUpstreamOptions& options)
    : name_(name),
      strand_(std::move(strand)),
      url_(std::move(url)),
      redacted_url_(url_.Redacted()),
      options_(options),
      retry_(strand_) {}

void Reconnector::Start(ReadyHandler on_ready, LostHandler on_lost) {
  if (stopped_) return;
  on_ready_ = std::move(on_ready);
  on_lost_ = std::move(on_lost);
  DoConnect();
}

void Reconnector::Stop() {
  stopped_ = true;
  on_ready_ = nullptr;
  on_lost_ = nullptr;
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

void Reconnector::DoConnect() {
  connection_ = std::make_shared<RedisConnection>(
      strand_, url_,
      RedisConnectionOptions{.connect_timeout = options_.connect_timeout,
                             .tcp_keepalive = options_.tcp_keepalive});
  connection_->Open(
      [self = shared_from_this()] { self->OnReady(); },
      [self = shared_from_this()](absl::Status status) { self->OnClosed(std::move(status)); });
}

void Reconnector::OnReady() {
  if (stopped_) return;
  ready_ = true;
  if (ever_ready_ || failures_ > 0) {
    BRIDGE_LOG(Info, "redis: %s connection to %s ready%s after %d failed attempts", name_,
               redacted_url_, ever_ready_ ? " again" : "", failures_);
  } else {
    BRIDGE_LOG(Info, "redis: %s connection to %s ready", name_, redacted_url_);
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
  const absl::Time now = absl::Now();
  if (ready_) {
    ready_ = false;
    // Only a connection that stayed up a while earns a fast reconnect: one Redis drops at
    // once, again and again, must not reconnect ~40 times a second.
    if (now - ready_since_ >= options_.backoff_reset_after) {
      backoff_ = 0;
    } else {
      ++backoff_;
    }
    BRIDGE_LOG(Warning, "redis: %s connection to %s lost (%s); reconnecting", name_, redacted_url_,
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
  } else {
    ++failures_;
    ++backoff_;
    SetStat([&](ReconnectorStats& s) {
      ++s.connect_failures;
      s.last_error = error;
      s.last_error_at = now;
    });
    // Once per outage, and again when the reason changes (refused, then bad password).
    if (error != last_logged_error_) {
      BRIDGE_LOG(Warning, "redis: %s connection to %s failed (%s); retrying", name_, redacted_url_,
                 error);
      last_logged_error_ = error;
    } else {
      BRIDGE_LOG(Debug, "redis: %s connection attempt %d to %s failed (%s)", name_, failures_,
                 redacted_url_, error);
    }
  }
  // The owner may have stopped us from on_lost.
  if (!stopped_) DoScheduleRetry();
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
  retry_.expires_after(absl::ToChronoNanoseconds(delay));
  retry_.async_wait(boost::asio::bind_executor(
      strand_,
      [self = shared_from_this()](const boost::system::error_code& ec) { self->OnRetry(ec); }));
}

void Reconnector::OnRetry(const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted || stopped_) return;
  if (ec) return Fail(ec, "reconnect timer");
  DoConnect();
}

void Reconnector::Fail(const boost::system::error_code& ec, const char* what) {
  if (ec == boost::asio::error::operation_aborted) return;
  BRIDGE_LOG(Error, "redis: %s %s failed: %s", name_, what, ec.message());
}

}  // namespace bridge::redis
