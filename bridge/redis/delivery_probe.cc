#include "bridge/redis/delivery_probe.h"

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bridge/common/log.h"

namespace bridge::redis {

std::string NewProbeChannel(std::string_view suffix) {
  absl::BitGen rng;
  std::string channel(kProbeChannelPrefix);
  absl::StrAppendFormat(&channel, "%016x%016x", absl::Uniform<uint64_t>(rng),
                        absl::Uniform<uint64_t>(rng));
  channel.append(suffix);
  return channel;
}

DeliveryProbe::DeliveryProbe(Strand strand, std::string channel, DeliveryProbeOptions options,
                             PublishFunction publish, DropFunction drop)
    : strand_(std::move(strand)),
      channel_(std::move(channel)),
      options_(options),
      publish_(std::move(publish)),
      drop_(std::move(drop)),
      enabled_(options.interval > absl::ZeroDuration()),
      round_timer_(strand_),
      deadline_timer_(strand_),
      resend_timer_(strand_) {}

void DeliveryProbe::Start() {
  Stop();
  if (!enabled_) return;
  running_ = true;
  ScheduleRound();
}

void DeliveryProbe::TurnOff(std::string_view why) {
  if (!enabled_) return;
  BRIDGE_LOG(Error,
             "redis: delivery probe on %s turned off: %s; allow the channels %s* to Bridge's "
             "Redis user, or run with --probe_interval=0",
             channel_, why, kProbeChannelPrefix);
  enabled_ = false;
  Stop();
}

void DeliveryProbe::Stop() {
  ++generation_;
  running_ = false;
  round_ = 0;
  round_timer_.cancel();
  deadline_timer_.cancel();
  resend_timer_.cancel();
}

DeliveryProbeStats DeliveryProbe::Stats() const {
  DeliveryProbeStats stats;
  stats.sent = sent_.load(std::memory_order_relaxed);
  stats.lost = lost_.load(std::memory_order_relaxed);
  const int64_t rtt = last_round_trip_ns_.load(std::memory_order_relaxed);
  if (rtt >= 0) stats.last_round_trip = absl::Nanoseconds(rtt);
  return stats;
}

void DeliveryProbe::ScheduleRound() {
  round_timer_.expires_after(absl::ToChronoNanoseconds(options_.interval));
  round_timer_.async_wait(boost::asio::bind_executor(
      strand_, [self = shared_from_this(), generation = generation_](
                   const boost::system::error_code& ec) { self->OnRoundTimer(generation, ec); }));
}

void DeliveryProbe::OnRoundTimer(uint64_t generation, const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted || generation != generation_ || !running_) {
    return;
  }
  if (ec) return Fail(ec, "round timer");
  round_ = ++last_round_;
  round_started_ = absl::Now();
  sent_.fetch_add(1, std::memory_order_relaxed);
  deadline_timer_.expires_after(absl::ToChronoNanoseconds(options_.timeout));
  deadline_timer_.async_wait(boost::asio::bind_executor(
      strand_, [self = shared_from_this(), generation = generation_](
                   const boost::system::error_code& ec) { self->OnDeadline(generation, ec); }));
  Send();
}

void DeliveryProbe::Send() {
  last_sent_ = absl::Now();
  // The answer may come at once, from inside publish_, or later from any thread: either
  // way it is handled on the strand, after this returns.
  publish_(channel_, absl::StrCat(round_),
           [self = shared_from_this(), generation = generation_,
            round = round_](absl::Status status) mutable {
             // Taken before `self` moves into the handler.
             Strand strand = self->strand_;
             boost::asio::post(
                 strand, [self = std::move(self), generation, round, status = std::move(status)] {
                   self->OnSent(generation, round, status);
                 });
           });
}

void DeliveryProbe::OnSent(uint64_t generation, uint64_t round, const absl::Status& status) {
  if (status.ok() || generation != generation_ || round != round_ || !running_) return;
  // Redis answered with an error: it is up and refuses the probe (an ACL without the
  // probe channel), and will refuse every later one.
  if (status.code() == absl::StatusCode::kInternal) {
    return TurnOff(absl::StrCat("Redis refused to publish on it (", status.message(), ")"));
  }
  // Not sent, or sent and then timed out on the publish connection; the deadline decides.
  // Until it comes, the probe goes again, so that a publish connection that is back in
  // time still proves this connection alive.
  BRIDGE_LOG(Debug, "redis: delivery probe %d on %s: %s; sending again", round, channel_,
             status.ToString());
  const absl::Duration resend_after = std::min(options_.timeout / 4, absl::Milliseconds(250));
  resend_timer_.expires_after(absl::ToChronoNanoseconds(resend_after));
  resend_timer_.async_wait(boost::asio::bind_executor(
      strand_, [self = shared_from_this(), generation = generation_](
                   const boost::system::error_code& ec) { self->OnResendTimer(generation, ec); }));
}

void DeliveryProbe::OnResendTimer(uint64_t generation, const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted || generation != generation_ || !running_ ||
      round_ == 0) {
    return;
  }
  if (ec) return Fail(ec, "resend timer");
  Send();
}

bool DeliveryProbe::OnMessage(std::string_view payload) {
  uint64_t round = 0;
  // Another round's probe (an earlier one that came back late, or was sent twice): only
  // the one awaited counts.
  if (!running_ || round_ == 0 ||
      !absl::SimpleAtoi(absl::string_view(payload.data(), payload.size()), &round) ||
      round != round_)
    return false;
  const absl::Duration round_trip = absl::Now() - last_sent_;
  last_round_trip_ns_.store(absl::ToInt64Nanoseconds(round_trip), std::memory_order_relaxed);
  round_ = 0;
  deadline_timer_.cancel();
  resend_timer_.cancel();
  ScheduleRound();
  return true;
}

void DeliveryProbe::OnDeadline(uint64_t generation, const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted || generation != generation_ || !running_ ||
      round_ == 0) {
    return;
  }
  if (ec) return Fail(ec, "deadline timer");
  lost_.fetch_add(1, std::memory_order_relaxed);
  const std::string why = absl::StrFormat("delivery probe %d on %s not back within %s", round_,
                                          channel_, absl::FormatDuration(options_.timeout));
  Stop();
  // The owner drops the connection (which logs it) and calls Stop again when it is lost.
  drop_(absl::DeadlineExceededError(why));
}

void DeliveryProbe::Fail(const boost::system::error_code& ec, const char* what) {
  if (ec == boost::asio::error::operation_aborted) return;
  BRIDGE_LOG(Error, "redis: delivery probe %s failed: %s", what, ec.message());
}

}  // namespace bridge::redis
