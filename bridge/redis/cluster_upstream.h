#ifndef BRIDGE_REDIS_CLUSTER_UPSTREAM_H_
#define BRIDGE_REDIS_CLUSTER_UPSTREAM_H_

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "bridge/hub/topic.h"
#include "bridge/hub/upstream.h"
#include "bridge/redis/redis_upstream_options.h"
#include "bridge/redis/redis_url.h"

namespace bridge::redis {

class ClusterCore;

// What ClusterUpstream::Create learnt from the cluster before starting.
struct ClusterInfo {
  // The seed node that answered.
  RedisUrl::Node seed;
  // Whether the cluster knows SPUBLISH (Redis 7 and later): sharded pub/sub.
  bool sharded_pubsub = false;
};

// The hub's upstream on a Redis Cluster (a redis+cluster:// URL).
//
// Channels that match RedisUpstreamOptions::sharded_channels use sharded pub/sub: each is
// SSUBSCRIBEd on the master that owns its hash slot, over one subscriber connection per
// master, and published with SPUBLISH to that master. Every other channel, and every
// pattern, uses classic pub/sub on one subscriber connection to one node (a PUBLISH
// reaches every node of a cluster), and is published with PUBLISH.
//
// Which master owns which slot comes from CLUSTER SHARDS (CLUSTER SLOTS on a cluster
// without it), asked of the masters and seed nodes in turn, and is asked again after a
// MOVED reply, a sunsubscribe that Redis pushes (the channel's slot left the node) and the
// loss of a connection. Such a loss costs the topics that rode on that connection alone:
// the hub hears OnTopicsLost for them, gaps their subscribers and subscribes them again,
// which this object holds back until the topology has been asked again. The hub hears
// OnUpstreamDisconnected only when no node of the cluster answers.
//
// Each subscriber connection, every shard's and the classic one, carries a DeliveryProbe
// of its own: a shard's on a channel whose hash tag lands on a slot its master serves
// (chosen again when that slot leaves it), SSUBSCRIBEd there and SPUBLISHed to that
// master; the classic one's SUBSCRIBEd and PUBLISHed on its node. A probe lost drops that
// connection alone, as any loss, and the listener hears OnUpstreamDelivering(false) until
// a connection to the same node delivers a probe again, or that node is no longer needed
// (no longer a master, or no longer the classic node).
//
// All connections are RespConnections (hiredis 0.14's async context does not know
// sharded pub/sub) on one strand of the caller's io_context. Thread-safe: Subscribe,
// Unsubscribe and Publish may be called from any thread; every listener call comes from
// the strand, none after Stop() returned. The io_context must be run by the caller and
// outlive this object.
class ClusterUpstream : public hub::Upstream {
 public:
  // Asks the seed nodes (blocking, bounded by connect_timeout per node) whether the
  // cluster is reachable and knows SPUBLISH. INVALID_ARGUMENT for a URL that is not a
  // cluster's or a bad glob; UNAVAILABLE when no seed answers; FAILED_PRECONDITION when a
  // seed is not in cluster mode, or sharded_channels are set and the cluster lacks
  // SPUBLISH (Redis < 7).
  static absl::StatusOr<std::unique_ptr<ClusterUpstream>> Create(
      const RedisUpstreamOptions& options, boost::asio::io_context& io);
  ~ClusterUpstream() override;
  ClusterUpstream(const ClusterUpstream&) = delete;
  ClusterUpstream& operator=(const ClusterUpstream&) = delete;

  // Call SetListener first, and Start once.
  void Start();
  // Closes every connection and answers pending publishes UNAVAILABLE. Safe from any
  // thread, including the strand; idempotent.
  void Stop();

  // hub::Upstream.
  void SetListener(hub::UpstreamListener* listener) override;
  void Subscribe(const hub::Topic& topic, uint64_t epoch) override;
  void Unsubscribe(const hub::Topic& topic, uint64_t epoch) override;
  // SPUBLISH for a sharded channel, PUBLISH otherwise, to the master of the channel's
  // slot (following MOVED). The receivers are those that node counts: for SPUBLISH every
  // subscriber of the channel, for PUBLISH those connected to that node. Bounded like
  // RedisUpstream's: UNAVAILABLE at once past max_publishes_in_flight, DEADLINE_EXCEEDED
  // after publish_timeout (and that master's publish connection is dropped and made anew).
  void Publish(std::string channel, std::string payload, PublishCallback done) override;
  // FCALL bridge_publish (durable_script.h) on the master of the channel's slot, the slot
  // of every key of the channel (following MOVED), with SPUBLISH for a sharded channel and
  // PUBLISH otherwise; the library is loaded on that master's publish connection before
  // its first FCALL. Bounded as Publish. INVALID_ARGUMENT for a channel that cannot be
  // durable (a '}' outside a hash tag, see DurableHashTag).
  void PublishDurable(hub::DurablePublish request, DurablePublishCallback done) override;
  // FCALL_RO bridge_history on the master of the channel's slot, bounded as Publish.
  // `done` runs on the strand of the listener calls, as a handler of its own.
  void ReadHistory(hub::HistoryQuery query, HistoryCallback done) override;

  // Whether `channel` is carried by sharded pub/sub.
  bool IsSharded(std::string_view channel) const;
  const ClusterInfo& info() const { return info_; }
  // True while the topology is known (some node of the cluster answers).
  bool connected() const;
  RedisUpstreamStats Stats() const;
  std::string redacted_url() const { return redacted_url_; }

 private:
  ClusterUpstream(const RedisUpstreamOptions& options, RedisUrl url, ClusterInfo info,
                  boost::asio::io_context& io);

  const RedisUpstreamOptions options_;
  const std::string redacted_url_;
  const ClusterInfo info_;
  boost::asio::io_context& io_;
  const std::shared_ptr<ClusterCore> core_;
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_CLUSTER_UPSTREAM_H_
