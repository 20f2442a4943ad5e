#ifndef BRIDGE_BENCH_FANOUT_GRPC_PUBLISHER_H_
#define BRIDGE_BENCH_FANOUT_GRPC_PUBLISHER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "bridge/v1/bridge.grpc.pb.h"

namespace bridge::bench {

// Publishes through the server's bridge.v1.Bridge/Publish RPC, as a client of Bridge does
// (a durable channel's message must: only Bridge's publish gives it an offset). Many calls
// are in flight on one connection; the completion queue is polled by the caller, in
// Collect, so the answers cost the generator no thread hop. Keeps what a durable channel's
// answers say: how many carried an offset, the highest offset and its epoch.
class GrpcPublisher {
 public:
  explicit GrpcPublisher(const std::string& target);
  // Waits for the calls still in flight (each has a deadline).
  ~GrpcPublisher();
  GrpcPublisher(const GrpcPublisher&) = delete;
  GrpcPublisher& operator=(const GrpcPublisher&) = delete;

  // Waits until the connection is up.
  absl::Status Connect(double timeout_seconds);
  // Starts one Publish call.
  void Publish(const std::string& channel, const std::string& payload);
  // Takes the answers that have arrived; with `block`, waits until at most `keep` calls
  // are in flight.
  void Collect(bool block, uint64_t keep);

  uint64_t in_flight() const { return in_flight_; }
  // Calls that did not end OK.
  uint64_t errors() const { return errors_; }
  // Answers that carried an offset (a durable channel's).
  uint64_t durable() const { return durable_; }
  uint64_t top_offset() const { return top_offset_; }
  const std::string& epoch() const { return epoch_; }

 private:
  struct Call;

  void Done(Call* call, bool ok);

  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<v1::Bridge::Stub> stub_;
  ::grpc::CompletionQueue cq_;
  uint64_t in_flight_ = 0;
  uint64_t errors_ = 0;
  uint64_t durable_ = 0;
  uint64_t top_offset_ = 0;
  std::string epoch_;
};

}  // namespace bridge::bench

#endif  // BRIDGE_BENCH_FANOUT_GRPC_PUBLISHER_H_
