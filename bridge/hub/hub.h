#ifndef BRIDGE_HUB_HUB_H_
#define BRIDGE_HUB_HUB_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "bridge/hub/history.h"
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
  // Which channels are durable (kept in a history, resumable), with their policy; unset
  // or answering nullopt: not durable.
  std::function<std::optional<HistoryPolicy>(std::string_view channel)> durable;
  // Entries per history read from the upstream; a resume or a recovery reads page after
  // page up to the channel's latest offset. Also the most a History call returns.
  size_t history_page = 1000;
};

// What a publish did.
struct PublishResult {
  int64_t receivers = 0;
  // The idempotency key was published already: nothing was sent.
  bool duplicate = false;
  // Durable channels: the message's place in the history (offset 0 otherwise).
  StreamPosition position;
};

// A read of a durable channel's history, for a client.
struct HistoryResult {
  // The channel's epoch and latest offset (empty and 0: no history).
  std::string epoch;
  uint64_t top = 0;
  // Oldest first, each recovered, with seq 0.
  std::vector<std::shared_ptr<const Message>> messages;
  // A read from a position the history no longer reaches back to (or of another epoch);
  // `lost` messages (0 when unknown) are gone before the first one returned.
  bool history_lost = false;
  uint64_t lost = 0;
};

// Durable channels a subscriber resumes: channel -> the last position it saw.
using ResumePositions = absl::flat_hash_map<std::string, StreamPosition>;

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
  //
  // `resume` names durable channels (each subscribed too, as if in `channels`) with the
  // last position the subscriber saw: after its Subscribed, the subscriber gets what the
  // history holds past that position (recovered, seq 0), then the live messages, none
  // twice and none missing at the seam. A history that no longer reaches back (or of
  // another epoch) gives a history_lost gap first. Positions of channels that are not
  // durable, or already held, are ignored.
  absl::Status Subscribe(const std::shared_ptr<Subscriber>& subscriber,
                         const std::vector<std::string>& channels,
                         const std::vector<std::string>& patterns,
                         const ResumePositions& resume = {}) ABSL_LOCKS_EXCLUDED(mu_);
  // Drops the topics it holds among these; names it does not hold are ignored.
  void Unsubscribe(const std::shared_ptr<Subscriber>& subscriber,
                   const std::vector<std::string>& channels,
                   const std::vector<std::string>& patterns) ABSL_LOCKS_EXCLUDED(mu_);
  // Releases every topic of the subscriber and its sink. Call exactly once per Connect.
  void Disconnect(const std::shared_ptr<Subscriber>& subscriber) ABSL_LOCKS_EXCLUDED(mu_);

  using PublishCallback = absl::AnyInvocable<void(absl::StatusOr<PublishResult>)>;
  using HistoryCallback = absl::AnyInvocable<void(absl::StatusOr<HistoryResult>)>;

  // Publishes through the upstream, durably on a durable channel (Upstream::
  // PublishDurable); `done` runs once, on any thread. With an idempotency key (empty for
  // none): Upstream::PublishWithKey. INVALID_ARGUMENT for a key over
  // Upstream::kMaxPublishKeyBytes.
  void Publish(std::string channel, std::string payload, std::string key, PublishCallback done);

  // Whether `channel` is durable here.
  bool IsDurable(std::string_view channel) const;
  // Reads a durable channel's history: the latest `limit` messages, or with `since`
  // those after it (as a resume would recover them). `limit` 0 or above
  // HubOptions::history_page: that. FAILED_PRECONDITION for a channel not durable.
  // `done` runs once, on any thread.
  void History(std::string channel, std::optional<StreamPosition> since, size_t limit,
               HistoryCallback done);

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
    // topic is confirmed again, or, on a durable channel, what they missed.
    bool owes_reconnect_gap = false;

    // Durable channels only.
    bool durable = false;
    // The position of the last message fanned out; the upstream's sequence only.
    StreamPosition delivered;
    // The channel's position learned by a kLearn read while nothing was delivered.
    std::optional<StreamPosition> known;
    // The recovery under way (0: none), the subscribers it recovers for (those live when
    // the outage began), and the live messages held back until it is done.
    uint64_t recovery = 0;
    std::shared_ptr<const LiveList> recovery_targets;
    std::vector<std::pair<StreamPosition, std::string>> held;
    // Subscribers that asked to resume while the topic was not live, or recovering.
    std::vector<std::pair<std::shared_ptr<Subscriber>, StreamPosition>> resumers;

    size_t count() const { return live->size() + waiting.size(); }
  };

  // A durable channel's history read that the hub makes for itself.
  struct Read {
    enum class Kind {
      // Server-side recovery after the topic's upstream subscription was lost.
      kRecovery,
      // Subscribers resuming from `since`.
      kResume,
      // Learns the channel's position while nothing was delivered yet.
      kLearn,
    };
    Kind kind;
    Topic topic;
    StreamPosition since;
    // kRecovery: the recovery's number.
    uint64_t id = 0;
    // kResume.
    std::vector<std::shared_ptr<Subscriber>> resumers;
  };

  // What must happen once the lock is released.
  struct Effects {
    std::vector<Topic> subscribe;
    std::vector<Topic> unsubscribe;
    uint64_t epoch = 0;
    std::vector<std::shared_ptr<Sink>> notify;
    std::vector<Read> reads;
  };

  // The history after a position, as recovered.
  struct Recovery {
    HistoryPage page;
    bool lost = false;
    uint64_t lost_count = 0;
  };
  using RecoveryCallback = absl::AnyInvocable<void(absl::StatusOr<Recovery>)>;

  absl::node_hash_map<std::string, TopicState>& MapFor(TopicKind kind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  TopicState* Find(const Topic& topic) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Join(const std::shared_ptr<Subscriber>& s, const Topic& topic, const StreamPosition* resume,
            Effects* fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the reads of the resumers waiting on a live topic that is not recovering.
  void StartResumes(TopicState* t, Effects* fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends a recovery without its read (the topic's subscription was lost again).
  void AbandonRecovery(TopicState* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartRead(Read read) ABSL_LOCKS_EXCLUDED(mu_);
  // A live message of a recovering topic, held until the recovery is done.
  void Hold(const Topic& topic, StreamPosition position, std::string_view payload)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnRecoveryRead(const Topic& topic, uint64_t id, absl::StatusOr<Recovery> result)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnResumeRead(const Topic& topic, const StreamPosition& since,
                    const std::vector<std::shared_ptr<Subscriber>>& resumers,
                    absl::StatusOr<Recovery> result) ABSL_LOCKS_EXCLUDED(mu_);
  // Reads the history after `since` (from the oldest message kept when it is of another
  // epoch), `limit` entries a page, page after page up to the latest offset unless
  // `one_page`, and tells whether it reaches back to `since`. `done` runs in the
  // upstream's sequence.
  void ReadSince(std::string channel, StreamPosition since, size_t limit, bool one_page,
                 RecoveryCallback done);
  // Reads from `query.after`, page after page while pages come full, up to the latest
  // offset (only one with `one_page`, or without `after`), into `acc`.
  void ReadPages(HistoryQuery query, Recovery acc, RecoveryCallback done, bool one_page = false);
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
  // Numbers recoveries.
  uint64_t last_recovery_ ABSL_GUARDED_BY(mu_) = 0;
  // Subscribers pushed to by fan-outs, for HubStats; written by the fan-out alone.
  std::atomic<uint64_t> deliveries_{0};
  SubscriberTotals totals_;

  // Orders health reports so that the last one made is the current state.
  absl::Mutex health_mu_ ABSL_ACQUIRED_AFTER(mu_);
  bool reported_health_ ABSL_GUARDED_BY(health_mu_) = false;
};

}  // namespace bridge::hub

#endif  // BRIDGE_HUB_HUB_H_
