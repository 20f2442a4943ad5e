#ifndef BRIDGE_BENCH_FANOUT_GRPC_CLIENTS_H_
#define BRIDGE_BENCH_FANOUT_GRPC_CLIENTS_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "bench/fanout/receiver.h"

namespace bridge::bench {

// N bridge.v1.Bridge/Subscribe streams on the gRPC callback API, spread over a few
// connections. Events are read as raw bytes and only the fields the benchmark needs are
// picked out, so the generator spends its core on receiving rather than parsing.
class GrpcClients : public Clients {
 public:
  GrpcClients(Receiver* receiver, std::string target, int connections);
  ~GrpcClients() override;

  void Start() override;
  void Stop() override;

 private:
  class Stream;

  void OnStreamDone() ABSL_LOCKS_EXCLUDED(mu_);

  Receiver* const receiver_;
  const std::string target_;
  std::vector<std::shared_ptr<::grpc::Channel>> channels_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::atomic<bool> stopping_{false};

  absl::Mutex mu_;
  int open_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace bridge::bench

#endif  // BRIDGE_BENCH_FANOUT_GRPC_CLIENTS_H_
