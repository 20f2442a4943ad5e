// LD_PRELOAD=libbench_no_deadlock_check.so bridge ...: runs an unchanged bridge binary
// with abseil's mutex deadlock detector off, to measure what turning it off in main()
// would save (docs/BENCHMARKS.md). Debian's abseil is a shared library, so this sets the
// very flag the server's mutexes read.
#include "absl/synchronization/mutex.h"

namespace {

__attribute__((constructor)) void TurnOffDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace
