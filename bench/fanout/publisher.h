#ifndef BRIDGE_BENCH_FANOUT_PUBLISHER_H_
#define BRIDGE_BENCH_FANOUT_PUBLISHER_H_

#include <hiredis/hiredis.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/fanout/grpc_publisher.h"
#include "bench/fanout/receiver.h"

namespace bridge::bench {

struct PublisherOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  // host:port is one node of a Redis Cluster: every message goes out as SPUBLISH to the
  // master that owns its channel's hash slot, one pipelined connection per master.
  bool cluster = false;
  // Non-empty: publish through the server's gRPC Publish RPC at this host:port instead of
  // straight to Redis (a durable channel's messages must go through Bridge).
  std::string grpc_target;
  // With grpc_target: the most Publish calls in flight at once.
  uint64_t grpc_in_flight = 128;
  int channels = 1;
  uint64_t messages = 1000;
  size_t payload_bytes = 100;
  // Messages per second over all channels; 0 = as fast as the window allows.
  double rate = 0;
  // Most messages published but not yet delivered to every subscriber (on average).
  uint64_t window = 64;
  // Subscribers per channel: how many deliveries one message makes; 0 for a run without
  // subscribers (no window then: only the pipeline bounds what is in flight).
  uint64_t fanout = 1;
  // How long the window may stay shut with no delivery before the publisher gives up
  // waiting (lost messages never come).
  double stall_seconds = 2;
  // Stop publishing after this many seconds even if fewer than `messages` went out
  // (0 = no limit): keeps saturation runs of very different systems equally long.
  double duration_seconds = 0;
};

struct PublisherResult {
  uint64_t published = 0;
  uint64_t errors = 0;
  uint64_t stalls = 0;
  double seconds = 0;
  // Through gRPC: the answers that carried a durable channel's offset, the highest offset
  // answered and its epoch.
  uint64_t durable = 0;
  uint64_t top_offset = 0;
  std::string epoch;
};

// Publishes straight to Redis with PUBLISH (or, on a cluster, SPUBLISH to each channel's
// master), pipelined: commands go out in batches and replies are collected without
// blocking until the pipeline is deep. Or, with grpc_target, through the server's Publish
// RPC, at most grpc_in_flight calls at once. Message i goes to channel i % channels with that
// channel's sequence number i / channels + 1.
class Publisher {
 public:
  Publisher(const PublisherOptions& options, Receiver* receiver);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  absl::Status Connect();
  PublisherResult Run();

 private:
  // One connection to a Redis node and the replies it still owes.
  struct Link {
    redisContext* ctx = nullptr;
    uint64_t pending = 0;
  };

  // Opens a link to host:port; its index in links_.
  absl::StatusOr<size_t> Open(const std::string& host, int port);
  // Reads the seed's CLUSTER SLOTS, opens one link per master and routes every channel to
  // the link of the master that owns its slot.
  absl::Status ConnectCluster();
  // Sends what is buffered and reads the replies that have arrived; with `block`, waits
  // until no more than `keep` replies are outstanding over all links.
  absl::Status Drain(bool block, uint64_t keep);

  const PublisherOptions options_;
  Receiver* const receiver_;
  std::vector<Link> links_;
  // Set with grpc_target: then there are no links.
  std::unique_ptr<GrpcPublisher> grpc_;
  // For each channel, the index of the link its messages go out on.
  std::vector<size_t> route_;
  uint64_t pending_ = 0;
  PublisherResult result_;
};

}  // namespace bridge::bench

#endif  // BRIDGE_BENCH_FANOUT_PUBLISHER_H_
