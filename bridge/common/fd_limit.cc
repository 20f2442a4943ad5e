#include "bridge/common/fd_limit.h"

#include <sys/resource.h>

namespace bridge {
namespace {

// Linux refuses RLIM_INFINITY for RLIMIT_NOFILE; this is its default fs.nr_open.
constexpr rlim_t kInfiniteCap = 1 << 20;

}  // namespace

FdLimit CurrentFdLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  return {limit.rlim_cur, limit.rlim_max};
}

FdLimit RaiseFdLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  const rlim_t target = limit.rlim_max == RLIM_INFINITY ? kInfiniteCap : limit.rlim_max;
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= target) return CurrentFdLimit();
  rlimit raised = limit;
  raised.rlim_cur = target;
  // Where that fails (a hard limit above fs.nr_open) the soft one stays as it was.
  (void)::setrlimit(RLIMIT_NOFILE, &raised);
  return CurrentFdLimit();
}

}  // namespace bridge
