#ifndef BRIDGE_CLIENTS_CLI_STOP_SIGNAL_H_
#define BRIDGE_CLIENTS_CLI_STOP_SIGNAL_H_

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"

namespace bridgectl {

// Turns SIGINT and SIGTERM into a clean stop: the call in progress is cancelled
// (ClientContext::TryCancel) and stopped() becomes true, so the command can finish and
// exit 0. A second signal exits at once with status 130.
//
// Signal handlers may not call into gRPC, so the signals are blocked instead and one
// thread of this object takes them with sigwait(). Create exactly one, in main, before
// any other thread exists: threads inherit the blocked mask, so that thread is the only
// one they reach. A blocked signal interrupts no system call, so a command that waits
// for anything but a registered call (reading standard input) waits on wake_fd() too.
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  bool stopped() const ABSL_LOCKS_EXCLUDED(mu_);

  // Registers the call to cancel on a signal (cancelled at once when one already came).
  // The caller keeps `context` alive until ClearCall() returns.
  void SetCall(grpc::ClientContext* context) ABSL_LOCKS_EXCLUDED(mu_);
  void ClearCall() ABSL_LOCKS_EXCLUDED(mu_);

  // Sleeps for `d`, or less when a signal comes; returns stopped().
  bool SleepFor(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_);

  // A descriptor that becomes readable, for good, once stopped() is true: poll(2) it
  // along with what a command waits for.
  int wake_fd() const { return wake_[0]; }

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* call_ ABSL_GUARDED_BY(mu_) = nullptr;
  // A pipe written once, at the first signal; nothing ever reads it.
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_STOP_SIGNAL_H_
