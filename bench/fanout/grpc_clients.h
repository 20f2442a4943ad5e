#ifndef BRIDGE_BENCH_FANOUT_GRPC_CLIENTS_H_
#define BRIDGE_BENCH_FANOUT_GRPC_CLIENTS_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/fanout/receiver.h"

namespace bridge::bench {

// N bridge.v1.Bridge/Subscribe (or, `batched`, SubscribeBatched) streams, spread over a few
// connections, driven by the completion-queue API from `threads` threads of our own. Each thread
// polls its queue and handles the reads it completes, so a delivery costs the generator no thread
// hop (the callback API hands every read to another thread: about twice the CPU on one core).
// Events (and batches of them) are read as raw bytes and only the fields the benchmark needs are
// picked out.
class GrpcClients : public Clients {
 public:
  GrpcClients(Receiver* receiver, std::string target, int connections, int threads, bool batched);
  ~GrpcClients() override;

  // Every stream resumes its channel (a durable one) after this position instead of
  // subscribing plainly. Call before Start.
  void set_resume(uint64_t offset, std::string epoch) {
    resume_offset_ = offset;
    resume_epoch_ = std::move(epoch);
    resume_ = true;
  }

  void Start() override;
  void Stop() override;

 private:
  class Stream;
  struct Poller;

  void Poll(Poller* poller);

  Receiver* const receiver_;
  const std::string target_;
  const bool batched_;
  bool resume_ = false;
  uint64_t resume_offset_ = 0;
  std::string resume_epoch_;
  std::vector<std::shared_ptr<::grpc::Channel>> channels_;
  std::vector<std::unique_ptr<::grpc::GenericStub>> stubs_;
  std::vector<std::unique_ptr<Poller>> pollers_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_{0};
};

}  // namespace bridge::bench

#endif  // BRIDGE_BENCH_FANOUT_GRPC_CLIENTS_H_
