#include "bridge/grpc/write_pump.h"

#include <pthread.h>

#include <utility>

#include "bridge/common/burst.h"

namespace bridge::grpc_frontend {

// A burst's round is not kept once it is over; this many entries are.
constexpr size_t kKeptRound = 1024;

WritePump::WritePump() : thread_([this] { Run(); }) {
  pthread_setname_np(thread_.native_handle(), "bridge-grpc-wr");
}

WritePump::~WritePump() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void WritePump::Add(std::shared_ptr<Writer> writer) {
  absl::MutexLock lock(&mu_);
  listed_.push_back(std::move(writer));
}

void WritePump::Run() {
  // Swapped with the listed writers each round, so that neither reallocates under load.
  std::vector<std::shared_ptr<Writer>> round;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]()
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !listed_.empty(); };
      mu_.Await(absl::Condition(&has_work));
      if (listed_.empty()) return;  // stopping, and nothing left
      round.swap(listed_);
    }
    RunRound(round, kKeptRound, [](const std::shared_ptr<Writer>& writer) { writer->WriteNext(); });
  }
}

}  // namespace bridge::grpc_frontend
