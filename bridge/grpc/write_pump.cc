#include "bridge/grpc/write_pump.h"

#include <pthread.h>

#include <utility>

namespace bridge::grpc_frontend {

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
  // Swapped with the listed writers each round, so that both vectors keep their capacity.
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
    for (auto& writer : round) writer->WriteNext();
    round.clear();
  }
}

}  // namespace bridge::grpc_frontend
