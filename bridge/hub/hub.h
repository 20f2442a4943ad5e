#ifndef BRIDGE_HUB_HUB_H_
#define BRIDGE_HUB_HUB_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "bridge/hub/live_list.h"
#include "bridge/hub/sink.h"
#include "bridge/hub/subscriber.h"
#include "bridge/hub/topic.h"
#include "bridge/hub/upstream.h"

namespace bridge::hub {

struct HubOptions {
  // Longest channel or pattern name accepted, in bytes.
  size_t max_topic_length = 256;
  // Largest payload Publish accepts, in bytes.
  size_t max_payload_bytes = 1 << 20;
  // Most channels plus patterns the hub holds (one Redis subscription each), whoever asks:
  // a Subscribe that would create a topic past it is refused (see IsTooManyTopics).
  size_t max_topics = 100000;
  // Called, with no lock held, each time Healthy() changes.
  std::function<void(bool healthy)> on_health_change;
};

struct HubStats {
  size_t subscribers = 0;
  // Topics the hub tracks (held, or being subscribed or unsubscribed).
  size_t channels = 0;
  size_t patterns = 0;
  size_t topics() const { return channels + patterns; }
  bool upstream_connected = false;
  // Since start: upstream messages fanned out to at least one subscriber, and the
  // deliveries (queue pushes) they made.
  uint64_t messages = 0;
  uint64_t deliveries = 0;
  // Since start: messages slow consumers lost, and slow consumers disconnected.
  uint64_t dropped = 0;
  uint64_t slow_consumers_disconnected = 0;
};

// Channels and patterns -> subscribers. Holds one upstream subscription per topic,
// whatever the number of subscribers, reference-counted: the upstream is asked to
// subscribe when a topic gains its first subscriber and to unsubscribe when it loses its
// last. Fans every upstream message out, as one shared immutable Message, to the bounded
// queues of the topic's subscribers.
//
// Thread-safe. Front ends call Connect/Subscribe/Unsubscribe/Disconnect/Publish from
// their own threads; the upstream calls the UpstreamListener methods from its own.
// Knows nothing of gRPC, WebSocket or Redis.
class Hub : public UpstreamListener {
 public:
  // `upstream` must outlive the hub; the hub registers itself as its listener.
  Hub(const HubOptions& options, Upstream* upstream);
  ~Hub() override;
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // A new subscriber whose sink hears of its events. UNAVAILABLE after Shutdown.
  absl::StatusOr<std::shared_ptr<Subscriber>> Connect(std::shared_ptr<Sink> sink,
                                                      const SubscriberOptions& options)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Adds channels and patterns, all or none: INVALID_ARGUMENT for a bad name,
  // RESOURCE_EXHAUSTED past SubscriberOptions::max_topics, or past HubOptions::max_topics
  // (then IsTooManyTopics holds; topics already held may still be joined). Each new topic yields a
  // Subscribed event once the upstream confirmed it (at once when already live); a
  // topic already held yields one again.
  absl::Status Subscribe(const std::shared_ptr<Subscriber>& subscriber,
                         const std::vector<std::string>& channels,
                         const std::vector<std::string>& patterns) ABSL_LOCKS_EXCLUDED(mu_);
  // Drops the topics it holds among these; names it does not hold are ignored.
  void Unsubscribe(const std::shared_ptr<Subscriber>& subscriber,
                   const std::vector<std::string>& channels,
                   const std::vector<std::string>& patterns) ABSL_LOCKS_EXCLUDED(mu_);
  // Releases every topic of the subscriber and its sink. Call exactly once per Connect.
  void Disconnect(const std::shared_ptr<Subscriber>& subscriber) ABSL_LOCKS_EXCLUDED(mu_);

  // Publishes through the upstream; `done` gets the receiver count or an error.
  void Publish(std::string channel, std::string payload, Upstream::PublishCallback done);
  // The same with an idempotency key (Upstream::PublishWithKey); an empty key publishes as
  // above. INVALID_ARGUMENT for a key over Upstream::kMaxPublishKeyBytes.
  void Publish(std::string channel, std::string payload, std::string key,
               Upstream::PublishCallback done);

  // Closes every subscriber with UNAVAILABLE and refuses new ones.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // True while the upstream is connected, every connection of it delivers
  // (OnUpstreamDelivering), and no subscription awaits renewal after a reconnect.
  bool Healthy() const ABSL_LOCKS_EXCLUDED(mu_);
  HubStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);

  // Checks a channel or pattern name against the limits.
  absl::Status ValidateName(std::string_view what, std::string_view name) const;

  // Whether Subscribe refused because the hub holds HubOptions::max_topics topics, not
  // because the subscriber holds its own limit: both are RESOURCE_EXHAUSTED, and a front
  // end may tell its client which (the WebSocket's too_many_topics).
  static bool IsTooManyTopics(const absl::Status& status);

  // UpstreamListener.
  void OnUpstreamConnected(uint64_t epoch) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnUpstreamDisconnected() override ABSL_LOCKS_EXCLUDED(mu_);
  // Each lost topic becomes idle: one with live subscribers owes them a redis_reconnect
  // gap, given when its new Subscribe is confirmed; the others' subscribers see nothing.
  void OnTopicsLost(const std::vector<Topic>& topics) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnUpstreamDelivering(bool delivering) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnSubscribeConfirmed(const Topic& topic) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnUnsubscribeConfirmed(const Topic& topic) override ABSL_LOCKS_EXCLUDED(mu_);
  // Takes the topic from every subscriber holding it, with a Refused event each, and
  // forgets it.
  void OnSubscribeRefused(const Topic& topic, const absl::Status& why) override
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnMessage(const Topic& topic, std::string_view channel, std::string_view payload) override
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  using SubscriberList = std::vector<std::shared_ptr<Subscriber>>;

  // Where a topic stands with the upstream. At most one order is in flight per topic:
  // a subscriber that arrives while an unsubscribe is in flight waits for its
  // confirmation, then the topic is subscribed again.
  enum class UpstreamState { kIdle, kSubscribing, kLive, kUnsubscribing };

  struct TopicState {
    Topic topic;
    // Messages delivered so far; only the upstream's thread advances it.
    std::atomic<uint64_t> seq{0};
    // Subscribers that receive messages. Replaced, never changed in place, so the
    // fan-out reads a snapshot without holding the lock.
    std::shared_ptr<const LiveList> live = std::make_shared<const LiveList>();
    // Subscribers waiting for the upstream's confirmation.
    SubscriberList waiting;
    UpstreamState upstream = UpstreamState::kIdle;
    // The live subscribers lost messages in an upstream outage; they get a Gap when the
    // topic is confirmed again.
    bool owes_reconnect_gap = false;

    size_t count() const { return live->size() + waiting.size(); }
  };

  // What must happen once the lock is released.
  struct Effects {
    std::vector<Topic> subscribe;
    std::vector<Topic> unsubscribe;
    uint64_t epoch = 0;
    std::vector<std::shared_ptr<Sink>> notify;
  };

  absl::node_hash_map<std::string, TopicState>& MapFor(TopicKind kind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  TopicState* Find(const Topic& topic) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Join(const std::shared_ptr<Subscriber>& s, const Topic& topic, Effects* fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Leave(const std::shared_ptr<Subscriber>& s, const Topic& topic, Effects* fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Issues the next upstream order the topic needs, or forgets an unused idle topic.
  void Reconcile(TopicState* t, Effects* fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetOwesGap(TopicState* t, bool owes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HealthyLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Runs the effects, with no lock held, and reports a change of health.
  void Apply(Effects fx) ABSL_LOCKS_EXCLUDED(mu_, health_mu_);

  const HubOptions options_;
  Upstream* const upstream_;

  mutable absl::Mutex mu_;
  absl::node_hash_map<std::string, TopicState> channels_ ABSL_GUARDED_BY(mu_);
  absl::node_hash_map<std::string, TopicState> patterns_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::shared_ptr<Subscriber>> subscribers_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  // False while a connection of the upstream does not deliver (OnUpstreamDelivering).
  bool upstream_delivering_ ABSL_GUARDED_BY(mu_) = true;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  // Topics with owes_reconnect_gap set.
  size_t owing_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // Fan-outs (OnMessage) started and finished, numbered from 1; written by the upstream's
  // thread only, the start under a reader lock, so a leave (under the writer lock) knows
  // whether one is running with a list taken before it, and of which topic.
  std::atomic<uint64_t> fanouts_started_{0};
  std::atomic<uint64_t> fanouts_done_{0};
  // The topic of the last fan-out started; compared, never followed.
  std::atomic<const TopicState*> fanout_topic_{nullptr};
  // Subscribers pushed to by fan-outs, for HubStats; written by the fan-out alone.
  std::atomic<uint64_t> deliveries_{0};
  SubscriberTotals totals_;

  // Orders health reports so that the last one made is the current state.
  absl::Mutex health_mu_ ABSL_ACQUIRED_AFTER(mu_);
  bool reported_health_ ABSL_GUARDED_BY(health_mu_) = false;
};

}  // namespace bridge::hub

#endif  // BRIDGE_HUB_HUB_H_
