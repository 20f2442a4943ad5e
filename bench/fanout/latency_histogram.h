#ifndef BRIDGE_BENCH_FANOUT_LATENCY_HISTOGRAM_H_
#define BRIDGE_BENCH_FANOUT_LATENCY_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace bridge::bench {

// Latencies in nanoseconds, in log-linear buckets (32 per power of two: within ~3%),
// recorded lock-free from any number of receiver threads.
class LatencyHistogram {
 public:
  static constexpr int kSubBits = 5;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = 64 * kSub;

  void Record(uint64_t ns) {
    buckets_[Index(ns)].fetch_add(1, std::memory_order_relaxed);
    uint64_t max = max_.load(std::memory_order_relaxed);
    while (ns > max && !max_.compare_exchange_weak(max, ns, std::memory_order_relaxed)) {
    }
  }

  uint64_t Count() const {
    uint64_t n = 0;
    for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
    return n;
  }

  // The value at quantile q (0..1), as the upper edge of its bucket; 0 when empty.
  uint64_t Quantile(double q) const {
    const uint64_t total = Count();
    if (total == 0) return 0;
    const uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total - 1)) + 1;
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += buckets_[i].load(std::memory_order_relaxed);
      if (seen >= rank) {
        const uint64_t edge = UpperEdge(i);
        const uint64_t max = Max();
        return edge < max ? edge : max;
      }
    }
    return Max();
  }
  uint64_t Max() const { return max_.load(std::memory_order_relaxed); }

  void Reset() {
    for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
  }

 private:
  static int Index(uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    const int msb = 63 - std::countl_zero(v);
    const int shift = msb - kSubBits;
    const int sub = static_cast<int>((v >> shift) & (kSub - 1));
    return (shift + 1) * kSub + sub;
  }
  static uint64_t UpperEdge(int index) {
    if (index < kSub) return static_cast<uint64_t>(index);
    const int shift = index / kSub - 1;
    const uint64_t sub = static_cast<uint64_t>(index % kSub);
    return ((uint64_t{kSub} + sub + 1) << shift) - 1;
  }

  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> max_{0};
};

}  // namespace bridge::bench

#endif  // BRIDGE_BENCH_FANOUT_LATENCY_HISTOGRAM_H_
