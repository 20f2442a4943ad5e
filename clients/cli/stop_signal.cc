#include "clients/cli/stop_signal.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bridgectl {
namespace {

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

StopSignal::StopSignal() {
  sigset_t set = StopSignals();
  if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) {
    std::fprintf(stderr, "bridgectl: pthread_sigmask: %s\n", std::strerror(err));
    std::abort();
  }
  if (pipe2(wake_, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "bridgectl: pipe: %s\n", std::strerror(errno));
    std::abort();
  }
  thread_ = std::thread([this] { Run(); });
}

StopSignal::~StopSignal() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  // Wakes sigwait(); Run() sees closing_ and returns.
  pthread_kill(thread_.native_handle(), SIGTERM);
  thread_.join();
  close(wake_[0]);
  close(wake_[1]);
}

void StopSignal::Run() {
  const sigset_t set = StopSignals();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    absl::MutexLock lock(&mu_);
    if (closing_) return;
    if (stopped_) _exit(130);  // The second Ctrl-C: the user means it.
    stopped_ = true;
    // One byte in an otherwise empty pipe never blocks; the descriptor stays readable.
    if (write(wake_[1], "", 1) != 1) {
      std::fprintf(stderr, "bridgectl: cannot wake the command: %s\n", std::strerror(errno));
      _exit(130);
    }
    // Cancelling under the lock is what keeps the context alive: ClearCall() waits for
    // it. TryCancel() only marks the call and never calls back into this object.
    if (call_ != nullptr) call_->TryCancel();
  }
}

bool StopSignal::stopped() const {
  absl::MutexLock lock(&mu_);
  return stopped_;
}

void StopSignal::SetCall(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  call_ = context;
  if (stopped_) call_->TryCancel();
}

void StopSignal::ClearCall() {
  absl::MutexLock lock(&mu_);
  call_ = nullptr;
}

bool StopSignal::SleepFor(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopped_), d);
  return stopped_;
}

}  // namespace bridgectl
