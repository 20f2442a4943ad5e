#include "clients/cli/backoff.h"

#include <algorithm>

namespace bridgectl {

Backoff::Backoff(absl::Duration initial, absl::Duration max)
    : initial_(initial), max_(max), current_(initial), random_(std::random_device{}()) {}

absl::Duration Backoff::Next() {
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  absl::Duration delay = current_ * jitter(random_);
  current_ = std::min(current_ * 2, max_);
  return delay;
}

}  // namespace bridgectl
