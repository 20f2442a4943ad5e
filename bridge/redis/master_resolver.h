#ifndef BRIDGE_REDIS_MASTER_RESOLVER_H_
#define BRIDGE_REDIS_MASTER_RESOLVER_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bridge/redis/redis_url.h"

namespace bridge::redis {

class Reconnector;

// Tells a Reconnector where to connect when the address can change under it: the master
// that Redis Sentinel names (SentinelResolver). The reconnector asks before every attempt,
// reports what failed there, and is told to move when the master does.
//
// Owned by the upstream and shared with its reconnectors. Every method runs on the
// upstream's strand.
class MasterResolver {
 public:
  virtual ~MasterResolver() = default;

  // The master to connect to now; UNAVAILABLE while none is known.
  virtual absl::StatusOr<RedisUrl> Master() = 0;
  // An attempt at `master` failed, or its ready connection was lost: what the resolver
  // knows may be stale. Never calls back into the reconnector before it returns.
  virtual void MasterFailed(const RedisUrl& master, const absl::Status& why) = 0;
  // `reconnector` is Retarget()ed whenever the master changes, as long as it lives.
  virtual void Watch(std::weak_ptr<Reconnector> reconnector) = 0;
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_MASTER_RESOLVER_H_
