#ifndef BRIDGE_REDIS_DELIVERY_PROBE_H_
#define BRIDGE_REDIS_DELIVERY_PROBE_H_

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bridge/redis/asio_hiredis.h"
#include "bridge/redis/probe_channel.h"

namespace bridge::redis {

// A new probe channel: the prefix and 128 random bits in hex, so that Bridge processes
// sharing one Redis never answer each other's probes. `suffix` is appended as given (a
// Cluster hash tag, say, to land the channel on one shard).
std::string NewProbeChannel(std::string_view suffix = "");

struct DeliveryProbeOptions {
  // Time from one probe's return to the next probe; zero turns probing off.
  absl::Duration interval = absl::Seconds(1);
  // A probe that has not come back within this is lost.
  absl::Duration timeout = absl::Seconds(3);
};

struct DeliveryProbeStats {
  uint64_t sent = 0;
  uint64_t lost = 0;
  // The round trip of the most recent probe that came back; InfiniteDuration before any.
  absl::Duration last_round_trip = absl::InfiniteDuration();
};

// Proves that one subscriber connection still delivers: while the connection is up,
// publishes a probe on `channel` (which that connection subscribes) every interval, and
// expects it back within timeout. A probe that does not come back means the connection,
// or Redis, no longer delivers (a frozen or paused Redis, a half-open TCP connection):
// the probe asks its owner to drop the connection, which reconnects and, until it
// does, reports the upstream disconnected.
//
// It knows nothing of the connection's internals; the owner wires it with two callbacks
// and tells it what happens:
// - `publish(channel, payload, done)` sends a probe (over another connection: a RESP2
//   subscribed connection cannot publish); `done` runs once, on any thread, with the
//   outcome. A probe that could not be sent (the publish connection down) is sent again
//   within its timeout; one Redis refused (an error reply, such as an ACL's NOPERM) turns
//   probing off for good, with one log line, since no later one can succeed.
// - `drop(status)` drops the connection as lost.
// - Start() when the connection is ready (after sending its SUBSCRIBE of channel()),
//   OnMessage() for each message on channel(), Stop() when the connection is lost.
//
// Owned by the connection and shared with its own queued handlers. Start, Stop and
// OnMessage run on the strand, which the callbacks are called from; Stats from any thread.
class DeliveryProbe : public std::enable_shared_from_this<DeliveryProbe> {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::Status)>;
  using PublishFunction =
      absl::AnyInvocable<void(std::string channel, std::string payload, DoneCallback done)>;
  using DropFunction = absl::AnyInvocable<void(absl::Status why)>;

  DeliveryProbe(Strand strand, std::string channel, DeliveryProbeOptions options,
                PublishFunction publish, DropFunction drop);
  DeliveryProbe(const DeliveryProbe&) = delete;
  DeliveryProbe& operator=(const DeliveryProbe&) = delete;

  const std::string& channel() const { return channel_; }
  // False once probing is off: by options, or after Redis refused a probe.
  bool enabled() const { return enabled_; }

  // The connection is ready: the first probe goes out one interval from now.
  void Start();
  // The connection is gone (or stopping): no probe is pending, and none is sent until
  // the next Start. Idempotent.
  void Stop();
  // A message on channel() arrived on the connection. True when it was the probe awaited,
  // which shows that the connection delivers.
  bool OnMessage(std::string_view payload);
  // Redis refuses the probe (`why`: an ACL without the channel, say): logs it once and
  // probes no more, on this connection or the next.
  void TurnOff(std::string_view why);

  DeliveryProbeStats Stats() const;

 private:
  void ScheduleRound();
  void OnRoundTimer(uint64_t generation, const boost::system::error_code& ec);
  void Send();
  void OnSent(uint64_t generation, uint64_t round, const absl::Status& status);
  void OnResendTimer(uint64_t generation, const boost::system::error_code& ec);
  void OnDeadline(uint64_t generation, const boost::system::error_code& ec);
  void Fail(const boost::system::error_code& ec, const char* what);

  Strand strand_;
  const std::string channel_;
  const DeliveryProbeOptions options_;
  PublishFunction publish_;
  DropFunction drop_;

  // Strand only.
  bool enabled_;
  // Changes at every Start and Stop, so that a handler queued for an earlier connection
  // (a timer, a publish's answer) does nothing.
  uint64_t generation_ = 0;
  bool running_ = false;
  // The probe in flight: its number (the payload) and when it was first and last sent;
  // round_ 0 while none is.
  uint64_t round_ = 0;
  uint64_t last_round_ = 0;
  absl::Time round_started_;
  absl::Time last_sent_;
  boost::asio::steady_timer round_timer_;
  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer resend_timer_;

  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> lost_{0};
  // Nanoseconds; negative before any probe came back.
  std::atomic<int64_t> last_round_trip_ns_{-1};
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_DELIVERY_PROBE_H_
