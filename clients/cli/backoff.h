#ifndef BRIDGE_CLIENTS_CLI_BACKOFF_H_
#define BRIDGE_CLIENTS_CLI_BACKOFF_H_

#include <random>

#include "absl/time/time.h"

namespace bridgectl {

// Delays between reconnection attempts: exponential from `initial` up to `max`, each
// one spread by +-20% jitter so that many clients cut off together do not come back in
// lockstep. Reset() once a connection proved good.
class Backoff {
 public:
  Backoff(absl::Duration initial = absl::Milliseconds(500), absl::Duration max = absl::Seconds(30));

  absl::Duration Next();
  void Reset() { current_ = initial_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  absl::Duration current_;
  std::mt19937_64 random_;
};

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_BACKOFF_H_
