#ifndef BRIDGE_HUB_SUBSCRIBER_H_
#define BRIDGE_HUB_SUBSCRIBER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "boost/circular_buffer.hpp"
#include "bridge/hub/event.h"
#include "bridge/hub/sink.h"
#include "bridge/hub/topic.h"

namespace bridge::hub {

// What happens when a subscriber's queue is full.
enum class SlowConsumerPolicy {
  // Drop the oldest queued messages; the subscriber later gets a Gap with the count.
  kDrop,
  // Close the subscriber with RESOURCE_EXHAUSTED.
  kDisconnect,
};

struct SubscriberOptions {
  // Bounds of the queue; both hold at all times.
  size_t max_queued_messages = 4096;
  size_t max_queued_bytes = 8 << 20;
  SlowConsumerPolicy policy = SlowConsumerPolicy::kDrop;
  // How many channels and patterns the subscriber may hold at once.
  size_t max_topics = 1024;
};

// Counts over every subscriber of a hub, for monitoring; updated only where messages are
// lost, never on the delivery path.
struct SubscriberTotals {
  // Messages a slow consumer lost: its oldest ones dropped, or one too large to queue.
  std::atomic<uint64_t> dropped{0};
  // Subscribers closed as slow consumers (SlowConsumerPolicy::kDisconnect).
  std::atomic<uint64_t> disconnected{0};
};

// One client stream's place in the hub: its bounded queue of events and the topics it
// holds. Made by Hub::Connect and shared by the hub and the front end that owns the
// stream; the front end takes events with Pop and ends it with Hub::Disconnect.
class Subscriber {
 public:
  enum class PopResult { kEvent, kEmpty, kClosed };

  // `totals`, if given, must outlive the subscriber.
  Subscriber(std::shared_ptr<Sink> sink, const SubscriberOptions& options,
             SubscriberTotals* totals = nullptr);
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Takes the next event. kEmpty re-arms Sink::OnReady for the next push; kClosed means
  // the hub closed the subscriber (see status()) and nothing more will come.
  PopResult Pop(Event* out) ABSL_LOCKS_EXCLUDED(mu_);
  // Appends up to `max` events to `out`; kEvent if it took any.
  PopResult PopMany(std::vector<Event>* out, size_t max) ABSL_LOCKS_EXCLUDED(mu_);

  // OK while open; after the hub closed it, why (RESOURCE_EXHAUSTED for a slow
  // consumer under the disconnect policy, UNAVAILABLE at shutdown).
  absl::Status status() const ABSL_LOCKS_EXCLUDED(mu_);

  const SubscriberOptions& options() const { return options_; }

  // For the hub. Each returns the sink to notify once the caller holds no lock, or null.
  // `fanout` numbers the hub's fan-out the message comes from (see Purge).
  std::shared_ptr<Sink> PushMessage(const std::shared_ptr<const Message>& message,
                                    uint64_t fanout = 0) ABSL_LOCKS_EXCLUDED(mu_);
  // A Subscribed already queued for the topic answers a second one, which is not queued:
  // control events do not count against the bounds, so their number must stay bounded
  // by the topics held.
  std::shared_ptr<Sink> PushControl(Event event) ABSL_LOCKS_EXCLUDED(mu_);
  std::shared_ptr<Sink> Close(absl::Status why) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets queued messages and pending gaps of a topic the subscriber left. A fan-out
  // numbered up to `stale_until` may still be running from a list that includes this
  // subscriber: its messages of the topic are refused when they arrive, so none follows
  // the leave (0: no fan-out is running).
  void Purge(const Topic& topic, uint64_t stale_until = 0) ABSL_LOCKS_EXCLUDED(mu_);
  // Drops the sink: after Disconnect nothing calls into the front end.
  void DetachSink() ABSL_LOCKS_EXCLUDED(mu_);

  // A resume of a durable channel, in two steps around the hub's history read. From
  // BeginResume, the topic's live messages are held back (at most max_queued_messages
  // of them: past that the oldest are dropped and counted for a slow_consumer gap).
  void BeginResume(const Topic& topic) ABSL_LOCKS_EXCLUDED(mu_);
  // Queues `gap` (when given), the `recovered` messages, then the held live messages
  // whose offset is above the last of them (above `after` when there are none), and
  // ends the hold. Until a live message beyond that offset arrives, live messages at or
  // below it (in the same epoch) are refused: the history read may have overtaken their
  // delivery, and they were recovered already. Nothing happens when no resume of the
  // topic is under way (the subscriber left it meanwhile).
  std::shared_ptr<Sink> EndResume(const Topic& topic, const Event* gap,
                                  const std::vector<std::shared_ptr<const Message>>& recovered,
                                  const StreamPosition& after) ABSL_LOCKS_EXCLUDED(mu_);

  // The topics held; guarded by the hub's lock, read and written only by the hub.
  absl::flat_hash_set<Topic>& topics() { return topics_; }

 private:
  // A durable topic being resumed (holding) or just resumed (a floor).
  struct Resume {
    bool holding = true;
    std::vector<std::shared_ptr<const Message>> held;
    // After the hold: live messages at or below it are refused.
    StreamPosition floor;
  };

  std::shared_ptr<Sink> ArmedSinkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a message under the bounds and the slow-consumer policy.
  std::shared_ptr<Sink> QueueMessageLocked(const std::shared_ptr<const Message>& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a resume takes the message (held, or refused below a floor).
  bool ResumeTakesLocked(const std::shared_ptr<const Message>& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool TakeLocked(Event* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropOldestLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends, growing the ring by doubling.
  void PushLocked(Event event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ShrinkIfEmptyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  static constexpr size_t kKeptCapacity = 64;
  // Empties the queue for good; the sink must hear of it.
  std::shared_ptr<Sink> CloseLocked(absl::Status why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SubscriberOptions options_;
  SubscriberTotals* const totals_;
  mutable absl::Mutex mu_;
  std::shared_ptr<Sink> sink_ ABSL_GUARDED_BY(mu_);
  // A ring that allocates only once something is queued: an idle subscriber holds none.
  boost::circular_buffer<Event> queue_ ABSL_GUARDED_BY(mu_);
  // Messages (not control events) in queue_, and their cost in bytes.
  size_t queued_messages_ ABSL_GUARDED_BY(mu_) = 0;
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Messages dropped per topic since the subscriber last took a gap for it.
  absl::flat_hash_map<Topic, uint64_t> dropped_ ABSL_GUARDED_BY(mu_);
  // Topics with a Subscribed in queue_.
  absl::flat_hash_set<Topic> confirming_ ABSL_GUARDED_BY(mu_);
  // Topics left while a fan-out was running, with the last fan-out whose messages of it
  // are refused; empty but for a moment after a leave. stale_max_ is the largest.
  absl::flat_hash_map<Topic, uint64_t> stale_ ABSL_GUARDED_BY(mu_);
  uint64_t stale_max_ ABSL_GUARDED_BY(mu_) = 0;
  // True when the next push must call Sink::OnReady.
  bool armed_ ABSL_GUARDED_BY(mu_) = true;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  // Resumes under way or just done; null (a pointer's cost) for the many subscribers
  // that never resume.
  std::unique_ptr<absl::flat_hash_map<Topic, Resume>> resumes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Topic> topics_;
};

}  // namespace bridge::hub

#endif  // BRIDGE_HUB_SUBSCRIBER_H_
