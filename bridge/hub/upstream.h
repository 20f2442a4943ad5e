#ifndef BRIDGE_HUB_UPSTREAM_H_
#define BRIDGE_HUB_UPSTREAM_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bridge/hub/history.h"
#include "bridge/hub/topic.h"

namespace bridge::hub {

// What the hub hears from its upstream. Every call comes from one thread at a time, in
// the order the upstream saw the events (for Redis: one strand, in reply order).
class UpstreamListener {
 public:
  virtual ~UpstreamListener() = default;

  // A new connection is ready (authenticated, database selected) and carries no
  // subscription. `epoch` names it; the hub passes it back with every Subscribe and
  // Unsubscribe so an order meant for an older connection is ignored.
  virtual void OnUpstreamConnected(uint64_t epoch) = 0;
  // The connection was lost: every subscription is gone. The upstream reconnects by
  // itself and calls OnUpstreamConnected again.
  virtual void OnUpstreamDisconnected() = 0;
  // Some topics are no longer subscribed upstream while the upstream itself stays
  // connected: an upstream that spreads its topics over several connections (Redis
  // Cluster's shards) lost the connection carrying them, or the broker moved them
  // elsewhere. Orders in flight for them will not be confirmed. Their live subscribers
  // owe a gap, and the hub orders a Subscribe again for each topic still wanted, on the
  // current epoch.
  virtual void OnTopicsLost(const std::vector<Topic>& topics) = 0;
  // Whether every connection of an upstream that spreads its topics over several (Redis
  // Cluster's) delivers. One that stopped (its delivery probe lost) makes it false until
  // that connection, reopened, delivers again or is no longer needed, while the others go
  // on carrying their topics; the hub is unhealthy meanwhile. An upstream of one
  // connection says this with OnUpstreamDisconnected instead, and never calls it.
  virtual void OnUpstreamDelivering(bool delivering) { (void)delivering; }
  // The upstream confirmed a Subscribe (Unsubscribe), in the order they were sent.
  virtual void OnSubscribeConfirmed(const Topic& topic) = 0;
  virtual void OnUnsubscribeConfirmed(const Topic& topic) = 0;
  // Instead of OnSubscribeConfirmed: the broker refused the topic (a Redis ACL without
  // it; `why` is PERMISSION_DENIED with the broker's words). The topic is not subscribed.
  virtual void OnSubscribeRefused(const Topic& topic, const absl::Status& why) = 0;
  // A message on `channel`, delivered for `topic` (the channel itself, or a pattern
  // that matched it). The views are valid only during the call.
  virtual void OnMessage(const Topic& topic, std::string_view channel,
                         std::string_view payload) = 0;
};

// The hub's way to its message broker. The Redis implementation lives in bridge/redis;
// tests use a double. All methods may be called from any thread and never block.
class Upstream {
 public:
  using PublishCallback = absl::AnyInvocable<void(absl::StatusOr<int64_t> receivers)>;

  virtual ~Upstream() = default;

  // Must be called once, before the upstream starts.
  virtual void SetListener(UpstreamListener* listener) = 0;
  // Orders a subscription on the connection `epoch`; ignored if that connection is
  // gone. The confirmation comes through OnSubscribeConfirmed.
  virtual void Subscribe(const Topic& topic, uint64_t epoch) = 0;
  virtual void Unsubscribe(const Topic& topic, uint64_t epoch) = 0;
  // Publishes; `done` runs exactly once, on any thread, with the number of receivers
  // or an error (UNAVAILABLE at once while disconnected).
  virtual void Publish(std::string channel, std::string payload, PublishCallback done) = 0;

  // What a keyed publish's `done` gets instead of a receiver count when it was not sent.
  static constexpr int64_t kAlreadyPublished = -1;
  // The longest key PublishWithKey takes.
  static constexpr size_t kMaxPublishKeyBytes = 256;
  // Publishes unless a publish on `channel` with the same `key` (not empty) was made
  // within the upstream's key window, by this process or any other on the same broker;
  // then `done` gets kAlreadyPublished and nothing is sent. A client that retries a
  // publish whose outcome it does not know (DEADLINE_EXCEEDED) with the same key gets it
  // delivered once. An upstream that cannot honour keys answers UNIMPLEMENTED.
  virtual void PublishWithKey(std::string channel, std::string payload, std::string key,
                              PublishCallback done) {
    (void)channel;
    (void)payload;
    (void)key;
    done(absl::UnimplementedError("this upstream cannot honour publish keys"));
  }

  using DurablePublishCallback = absl::AnyInvocable<void(absl::StatusOr<DurablePublished>)>;
  using HistoryCallback = absl::AnyInvocable<void(absl::StatusOr<HistoryPage>)>;

  // Publishes to a durable channel in one atomic step on the broker: the next offset,
  // the history entry (trimmed to the policy), the epoch, the TTL and the publish of the
  // message sealed in its envelope (durable_envelope.h). With a key, as PublishWithKey.
  // `done` runs exactly once, on any thread.
  virtual void PublishDurable(DurablePublish request, DurablePublishCallback done) {
    (void)request;
    done(absl::UnimplementedError("this upstream has no durable channels"));
  }
  // Reads a durable channel's history. `done` runs exactly once, in the listener's
  // sequence (for Redis: on the strand of the listener calls), never while a listener
  // call runs, so the hub may merge the page with the messages it delivered around it.
  virtual void ReadHistory(HistoryQuery query, HistoryCallback done) {
    (void)query;
    done(absl::UnimplementedError("this upstream has no durable channels"));
  }
};

}  // namespace bridge::hub

#endif  // BRIDGE_HUB_UPSTREAM_H_
