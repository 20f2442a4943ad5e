#ifndef BRIDGE_REDIS_SUBSCRIBER_CONNECTION_H_
#define BRIDGE_REDIS_SUBSCRIBER_CONNECTION_H_

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bridge/hub/topic.h"
#include "bridge/hub/upstream.h"
#include "bridge/redis/asio_hiredis.h"
#include "bridge/redis/delivery_probe.h"
#include "bridge/redis/master_resolver.h"
#include "bridge/redis/reconnector.h"
#include "bridge/redis/redis_upstream_options.h"
#include "bridge/redis/redis_url.h"

namespace bridge::redis {

// One Redis pub/sub connection and what rides on it: the topics (P)SUBSCRIBEd on it, the
// orders not yet confirmed, the refusals Redis made, and the messages. Reconnects through
// its Reconnector, and announces each new connection to the listener with a fresh epoch;
// orders for an older epoch are ignored.
//
// Owned by RedisUpstream and shared with its own queued handlers. Subscribe and Stats
// are safe from any thread; the rest runs on the strand. Every listener call comes from
// the strand, none after Stop().
class SubscriberConnection : public std::enable_shared_from_this<SubscriberConnection> {
 public:
  // With a resolver, the connection goes to its master rather than to `url`.
  SubscriberConnection(Strand strand, RedisUrl url, const RedisUpstreamOptions& options,
                       std::shared_ptr<MasterResolver> resolver = nullptr);
  SubscriberConnection(const SubscriberConnection&) = delete;
  SubscriberConnection& operator=(const SubscriberConnection&) = delete;

  // Before Start.
  void SetListener(hub::UpstreamListener* listener) { listener_ = listener; }
  // Before Start: the probe that proves each connection delivers. Each ready connection
  // subscribes its channel before it is announced; its messages go to the probe alone.
  void AttachProbe(std::shared_ptr<DeliveryProbe> probe) { probe_ = std::move(probe); }
  // Strand only. Start once; Stop is idempotent.
  void Start();
  void Stop();
  // Strand only: drops the ready connection as lost with `why`, and reconnects.
  void Drop(absl::Status why);

  // A (P)SUBSCRIBE (`subscribe`) or (P)UNSUBSCRIBE for the connection of `epoch`.
  void Subscribe(const hub::Topic& topic, uint64_t epoch, bool subscribe);

  ReconnectorStats ConnectionStats() const { return reconnector_->Stats(); }
  // (P)SUBSCRIBEs Redis refused.
  uint64_t subscribes_refused() const {
    return subscribes_refused_.load(std::memory_order_relaxed);
  }
  // Zeros without a probe.
  DeliveryProbeStats ProbeStats() const { return probe_ ? probe_->Stats() : DeliveryProbeStats{}; }

 private:
  // A (P)SUBSCRIBE or (P)UNSUBSCRIBE sent and not yet confirmed. Redis answers them in
  // the order sent, one reply each (one name per command), so when an error reply closes
  // the connection, the oldest one is the command it refused.
  struct Order {
    hub::Topic topic;
    bool subscribe;
  };

  struct Refusal {
    absl::Status why;
    absl::Time until;
  };

  void OnReady();
  void OnLost(const absl::Status& status);
  void DoSubscribe(const hub::Topic& topic, uint64_t epoch, bool subscribe);
  bool IsRefused(const hub::Topic& topic);
  void BlameRefusal(const std::string& reply);
  void Confirmed(const hub::Topic& topic, bool subscribe);
  static void OnReply(redisAsyncContext* context, void* reply, void* privdata);
  void OnReplied(redisAsyncContext* context, const redisReply* reply);
  static void OnProbeReply(redisAsyncContext* context, void* reply, void* privdata);
  void OnProbeReplied(redisAsyncContext* context, const redisReply* reply);

  Strand strand_;
  const RedisUpstreamOptions options_;
  const std::shared_ptr<Reconnector> reconnector_;

  // Set before Start; read and cleared on the strand.
  hub::UpstreamListener* listener_ = nullptr;
  // Set before Start, then never changed; null without a probe.
  std::shared_ptr<DeliveryProbe> probe_;

  // Strand only.
  bool stopped_ = false;
  // The connected connection's epoch, 0 while there is none.
  uint64_t epoch_ = 0;
  uint64_t last_epoch_ = 0;
  // The probe channel's SUBSCRIBE is sent on this connection and not yet confirmed. It
  // goes before any of the hub's orders, so an error reply meanwhile is its refusal.
  bool probe_unconfirmed_ = false;
  // Topics with a (P)SUBSCRIBE sent and no (P)UNSUBSCRIBE confirmed on this connection.
  absl::flat_hash_set<hub::Topic> subscribed_;
  // Orders sent on this connection and not yet confirmed, oldest first.
  std::deque<Order> unconfirmed_;
  // Topics Redis refused to subscribe, and until when we take its word for it.
  absl::flat_hash_map<hub::Topic, Refusal> refused_;

  std::atomic<uint64_t> subscribes_refused_{0};
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_SUBSCRIBER_CONNECTION_H_
