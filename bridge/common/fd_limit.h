#ifndef BRIDGE_COMMON_FD_LIMIT_H_
#define BRIDGE_COMMON_FD_LIMIT_H_

#include <cstdint>

namespace bridge {

// The process' limits on open descriptors (RLIMIT_NOFILE).
struct FdLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;
};

FdLimit CurrentFdLimit();

// Raises the soft limit to the hard one (to 1 << 20 where the hard one is infinite), so
// that the connection caps derived from it have room; returns the limits in force after,
// the soft one unchanged if the kernel refused.
FdLimit RaiseFdLimit();

}  // namespace bridge

#endif  // BRIDGE_COMMON_FD_LIMIT_H_
