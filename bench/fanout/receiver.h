#ifndef BRIDGE_BENCH_FANOUT_RECEIVER_H_
#define BRIDGE_BENCH_FANOUT_RECEIVER_H_

#include <time.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "bench/fanout/latency_histogram.h"

namespace bridge::bench {

inline uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The payload of every benchmark message: "S<seq>T<send ns>|" padded with 'x' to the
// requested size. ASCII, so it travels as JSON "data" over WebSocket unchanged.
std::string MakePayload(uint64_t seq, uint64_t send_ns, size_t size);
// Parses a payload made by MakePayload (it may be followed by other bytes, e.g. the rest
// of a JSON frame); false if it does not start like one.
bool ParsePayload(std::string_view p, uint64_t* seq, uint64_t* send_ns);

// What every subscriber of a run saw. Each Subscriber is touched by one client thread at
// a time (its stream's or socket's callbacks); the totals are atomics.
class Receiver {
 public:
  struct Subscriber {
    int channel = 0;
    bool live = false;
    uint64_t subscribed_ns = 0;  // when its Subscribed came
    uint64_t received = 0;
    // The payload's sequence number of the latest message or, on a durable channel, its
    // offset: the channel's order (publishes through Bridge's gRPC Publish may reach Redis
    // in another order than they were sent, and the offsets are Redis' order).
    uint64_t last_seq = 0;
    uint64_t reordered = 0;  // arrived with a seq (offset) not above the last one seen
    uint64_t gaps = 0;
    bool failed = false;
    // Durable channels: the first offset received, the messages read back from the
    // history (a resume's), and when the catch-up offset arrived (0: not yet).
    uint64_t first_offset = 0;
    uint64_t recovered = 0;
    uint64_t caught_up_ns = 0;
  };

  Receiver(int subscribers, int channels);

  Subscriber& subscriber(int i) { return subs_[i]; }
  int size() const { return static_cast<int>(subs_.size()); }
  // The channel name of subscriber i: subscribers are spread round-robin.
  std::string ChannelName(int channel) const;
  int ChannelOf(int subscriber) const { return subscriber % channels_; }

  void OnSubscribed(int i);
  // `offset` is a durable channel's (0 for a plain one); a `recovered` message came from
  // the history, so its latency is not recorded.
  void OnMessage(int i, std::string_view payload, uint64_t offset = 0, bool recovered = false);
  // `reason` is the Gap's, when the transport gives it.
  void OnGap(int i, std::string_view reason = {});
  void OnFailed(int i, std::string_view why);

  int live() const { return live_.load(std::memory_order_acquire); }
  int failed() const { return failed_.load(std::memory_order_acquire); }
  uint64_t delivered() const { return delivered_.load(std::memory_order_acquire); }
  uint64_t last_delivery_ns() const { return last_delivery_ns_.load(std::memory_order_relaxed); }
  const LatencyHistogram& latency() const { return latency_; }
  uint64_t malformed() const { return malformed_.load(); }
  // How many gaps each reason announced (those with a reason).
  std::map<std::string, uint64_t> gap_reasons() const;
  // Messages that carried a durable channel's offset.
  uint64_t durable() const { return durable_.load(std::memory_order_acquire); }

  // A subscriber has caught up once it received a message with this offset or a later one.
  // Set before the subscribers start.
  void set_catch_up_offset(uint64_t offset) { catch_up_offset_ = offset; }
  int caught_up() const { return caught_up_.load(std::memory_order_acquire); }

  // Forgets what was received (not who is live), between two runs on the same
  // connections. Call only while nothing is being delivered.
  void ResetCounts();

  void set_prefix(std::string prefix) { prefix_ = std::move(prefix); }

 private:
  std::vector<Subscriber> subs_;
  const int channels_;
  std::string prefix_ = "bench";
  std::atomic<int> live_{0};
  std::atomic<int> failed_{0};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> last_delivery_ns_{0};
  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> durable_{0};
  uint64_t catch_up_offset_ = 0;
  std::atomic<int> caught_up_{0};
  std::atomic<bool> reported_failure_{false};
  // Gaps are rare: a lock is cheap enough.
  mutable std::mutex gap_mu_;
  std::map<std::string, uint64_t> gap_reasons_;
  LatencyHistogram latency_;
};

// A set of N subscriber connections of one transport. Start() begins connecting and
// returns at once; the Receiver counts them live as their subscriptions are confirmed.
class Clients {
 public:
  virtual ~Clients() = default;
  virtual void Start() = 0;
  // Closes every connection and joins the client's threads.
  virtual void Stop() = 0;
};

}  // namespace bridge::bench

#endif  // BRIDGE_BENCH_FANOUT_RECEIVER_H_
