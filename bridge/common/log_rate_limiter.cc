#include "bridge/common/log_rate_limiter.h"

namespace bridge {

bool LogRateLimiter::Admit(absl::Time now, int64_t* suppressed) {
  absl::MutexLock lock(&mu_);
  if (now - window_start_ >= interval_) {
    window_start_ = now;
    admitted_in_window_ = 0;
  }
  if (admitted_in_window_ >= burst_) {
    ++suppressed_;
    return false;
  }
  ++admitted_in_window_;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace bridge
