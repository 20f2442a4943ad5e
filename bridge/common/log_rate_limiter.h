#ifndef BRIDGE_COMMON_LOG_RATE_LIMITER_H_
#define BRIDGE_COMMON_LOG_RATE_LIMITER_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace bridge {

// Keeps one source of log lines (a call site, or a loop that retries) from flooding the
// log: at most `burst` lines in each `interval`, the rest counted, so that the next line
// written can say how many were left out. Each BRIDGE_LOG call site owns one (a function
// static); the time is passed in, so tests need no clock. Thread-safe.
class LogRateLimiter {
 public:
  static constexpr int kDefaultBurst = 10;
  static constexpr absl::Duration kDefaultInterval = absl::Seconds(10);

  explicit LogRateLimiter(int burst = kDefaultBurst, absl::Duration interval = kDefaultInterval)
      : burst_(burst), interval_(interval) {}
  LogRateLimiter(const LogRateLimiter&) = delete;
  LogRateLimiter& operator=(const LogRateLimiter&) = delete;

  // Whether a line at `now` may be written. If so, `*suppressed` is the number of lines
  // refused since the last one admitted (which the caller reports with this one).
  bool Admit(absl::Time now, int64_t* suppressed) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const int burst_;
  const absl::Duration interval_;
  absl::Mutex mu_;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int admitted_in_window_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace bridge

#endif  // BRIDGE_COMMON_LOG_RATE_LIMITER_H_
