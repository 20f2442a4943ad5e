#include "bridge/hub/hub.h"

#include <algorithm>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_format.h"
#include "bridge/common/log.h"

namespace bridge::hub {
namespace {

void AddNotify(std::shared_ptr<Sink> sink, std::vector<std::shared_ptr<Sink>>* notify) {
  if (sink != nullptr) notify->push_back(std::move(sink));
}

// Marks the status of Subscribe past HubOptions::max_topics.
constexpr absl::string_view kTooManyTopicsPayload = "bridge.hub/too_many_topics";

}  // namespace

Hub::Hub(const HubOptions& options, Upstream* upstream) : options_(options), upstream_(upstream) {
  upstream_->SetListener(this);
}

Hub::~Hub() = default;

absl::node_hash_map<std::string, Hub::TopicState>& Hub::MapFor(TopicKind kind) {
  return kind == TopicKind::kPattern ? patterns_ : channels_;
}

Hub::TopicState* Hub::Find(const Topic& topic) {
  auto& map = MapFor(topic.kind);
  auto it = map.find(topic.name);
  return it == map.end() ? nullptr : &it->second;
}

absl::Status Hub::ValidateName(std::string_view what, std::string_view name) const {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrFormat("empty %s name", what));
  if (name.size() > options_.max_topic_length) {
    return absl::InvalidArgumentError(absl::StrFormat("%s name is %d bytes, the limit is %d", what,
                                                      name.size(), options_.max_topic_length));
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s name contains a control character", what));
    }
  }
  return absl::OkStatus();
}

bool Hub::IsTooManyTopics(const absl::Status& status) {
  return status.GetPayload(kTooManyTopicsPayload).has_value();
}

absl::StatusOr<std::shared_ptr<Subscriber>> Hub::Connect(std::shared_ptr<Sink> sink,
                                                         const SubscriberOptions& options) {
  auto s = std::make_shared<Subscriber>(std::move(sink), options, &totals_);
  absl::MutexLock lock(&mu_);
  if (shut_down_) return absl::UnavailableError("server is shutting down");
  subscribers_.insert(s);
  return s;
}

absl::Status Hub::Subscribe(const std::shared_ptr<Subscriber>& subscriber,
                            const std::vector<std::string>& channels,
                            const std::vector<std::string>& patterns) {
  for (const auto& c : channels) {
    if (absl::Status st = ValidateName("channel", c); !st.ok()) return st;
  }
  for (const auto& p : patterns) {
    if (absl::Status st = ValidateName("pattern", p); !st.ok()) return st;
  }
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return absl::UnavailableError("server is shutting down");
    if (!subscribers_.contains(subscriber)) {
      return absl::FailedPreconditionError("subscriber is disconnected");
    }
    std::vector<Topic> topics;
    topics.reserve(channels.size() + patterns.size());
    for (const auto& c : channels) topics.push_back(Topic::Channel(c));
    for (const auto& p : patterns) topics.push_back(Topic::Pattern(p));
    size_t added = 0;
    // Of those, the topics no subscriber holds yet: each would be a new Redis subscription.
    size_t created = 0;
    absl::flat_hash_set<Topic> seen;
    for (const auto& t : topics) {
      if (!subscriber->topics().contains(t) && seen.insert(t).second) {
        ++added;
        if (Find(t) == nullptr) ++created;
      }
    }
    const size_t limit = subscriber->options().max_topics;
    if (subscriber->topics().size() + added > limit) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("too many subscriptions: %d held, %d more asked, the limit is %d",
                          subscriber->topics().size(), added, limit));
    }
    const size_t held = channels_.size() + patterns_.size();
    if (created > 0 && held + created > options_.max_topics) {
      absl::Status st = absl::ResourceExhaustedError(absl::StrFormat(
          "too many topics on this server: it holds %d channels and patterns, %d more asked, "
          "the limit is %d",
          held, created, options_.max_topics));
      st.SetPayload(kTooManyTopicsPayload, absl::Cord());
      return st;
    }
    for (const auto& t : topics) Join(subscriber, t, &fx);
  }
  Apply(std::move(fx));
  return absl::OkStatus();
}

void Hub::Unsubscribe(const std::shared_ptr<Subscriber>& subscriber,
                      const std::vector<std::string>& channels,
                      const std::vector<std::string>& patterns) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& c : channels) Leave(subscriber, Topic::Channel(c), &fx);
    for (const auto& p : patterns) Leave(subscriber, Topic::Pattern(p), &fx);
  }
  Apply(std::move(fx));
}

void Hub::Disconnect(const std::shared_ptr<Subscriber>& subscriber) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    std::vector<Topic> held(subscriber->topics().begin(), subscriber->topics().end());
    for (const auto& t : held) Leave(subscriber, t, &fx);
    subscribers_.erase(subscriber);
  }
  subscriber->DetachSink();
  Apply(std::move(fx));
}

void Hub::Join(const std::shared_ptr<Subscriber>& s, const Topic& topic, Effects* fx) {
  if (s->topics().contains(topic)) {
    // Asked again: confirm again if live; a pending one will be confirmed anyway. While a
    // topic is live, every subscriber holding it is in its live list (the waiting ones
    // join it on the confirmation).
    TopicState* t = Find(topic);
    if (t != nullptr && t->upstream == UpstreamState::kLive) {
      AddNotify(s->PushControl(Event::Subscribed(topic)), &fx->notify);
    }
    return;
  }
  s->topics().insert(topic);
  auto [it, inserted] = MapFor(topic.kind).try_emplace(topic.name);
  TopicState& t = it->second;
  if (inserted) t.topic = topic;
  if (connected_ && t.upstream == UpstreamState::kLive) {
    t.live = t.live->With(s);
    AddNotify(s->PushControl(Event::Subscribed(topic)), &fx->notify);
    return;
  }
  t.waiting.push_back(s);
  Reconcile(&t, fx);
}

void Hub::Leave(const std::shared_ptr<Subscriber>& s, const Topic& topic, Effects* fx) {
  if (s->topics().erase(topic) == 0) return;
  TopicState* t = Find(topic);
  // A fan-out of this topic that took its list before this leave may still be pushing.
  const uint64_t started = fanouts_started_.load(std::memory_order_relaxed);
  const bool running = fanouts_done_.load(std::memory_order_acquire) != started && t != nullptr &&
                       fanout_topic_.load(std::memory_order_relaxed) == t;
  s->Purge(topic, running ? started : 0);
  if (t == nullptr) return;
  if (auto next = t->live->Without(s.get())) {
    t->live = std::move(next);
  } else {
    t->waiting.erase(std::remove(t->waiting.begin(), t->waiting.end(), s), t->waiting.end());
  }
  if (t->live->empty()) SetOwesGap(t, false);
  Reconcile(t, fx);
}

void Hub::Reconcile(TopicState* t, Effects* fx) {
  if (t->upstream == UpstreamState::kSubscribing || t->upstream == UpstreamState::kUnsubscribing) {
    return;  // One order in flight per topic; its confirmation reconciles again.
  }
  const bool wanted = t->count() > 0;
  if (!connected_) {
    if (!wanted) MapFor(t->topic.kind).erase(t->topic.name);
    return;
  }
  if (wanted && t->upstream == UpstreamState::kIdle) {
    t->upstream = UpstreamState::kSubscribing;
    fx->subscribe.push_back(t->topic);
    fx->epoch = epoch_;
  } else if (!wanted && t->upstream == UpstreamState::kLive) {
    t->upstream = UpstreamState::kUnsubscribing;
    fx->unsubscribe.push_back(t->topic);
    fx->epoch = epoch_;
  } else if (!wanted && t->upstream == UpstreamState::kIdle) {
    MapFor(t->topic.kind).erase(t->topic.name);
  }
}

void Hub::SetOwesGap(TopicState* t, bool owes) {
  if (t->owes_reconnect_gap == owes) return;
  t->owes_reconnect_gap = owes;
  if (owes) {
    ++owing_;
  } else {
    --owing_;
  }
}

void Hub::OnUpstreamConnected(uint64_t epoch) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    connected_ = true;
    epoch_ = epoch;
    std::vector<TopicState*> all;
    for (auto& [name, t] : channels_) all.push_back(&t);
    for (auto& [name, t] : patterns_) all.push_back(&t);
    for (TopicState* t : all) Reconcile(t, &fx);
  }
  BRIDGE_LOG(Info, "upstream connected; renewing %d subscriptions", fx.subscribe.size());
  Apply(std::move(fx));
}

void Hub::OnUpstreamDisconnected() {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    connected_ = false;
    for (auto* map : {&channels_, &patterns_}) {
      for (auto it = map->begin(); it != map->end();) {
        TopicState& t = it->second;
        t.upstream = UpstreamState::kIdle;
        if (!t.live->empty()) SetOwesGap(&t, true);
        if (t.count() == 0) {
          map->erase(it++);
        } else {
          ++it;
        }
      }
    }
  }
  Apply(std::move(fx));
}

void Hub::OnTopicsLost(const std::vector<Topic>& topics) {
  Effects fx;
  size_t lost = 0;
  {
    absl::MutexLock lock(&mu_);
    for (const Topic& topic : topics) {
      TopicState* t = Find(topic);
      if (t == nullptr || t->upstream == UpstreamState::kIdle) continue;
      ++lost;
      // Whatever order was in flight is void: the upstream will not confirm it.
      t->upstream = UpstreamState::kIdle;
      if (!t->live->empty()) SetOwesGap(t, true);
      // Subscribes again while wanted (on the epoch in force), or forgets the topic.
      Reconcile(t, &fx);
    }
  }
  if (lost > 0) BRIDGE_LOG(Info, "upstream lost %d subscriptions; renewing them", lost);
  Apply(std::move(fx));
}

void Hub::OnUpstreamDelivering(bool delivering) {
  {
    absl::MutexLock lock(&mu_);
    upstream_delivering_ = delivering;
  }
  // Nothing to order: the upstream drops and reopens the connection itself, and reports
  // its topics lost. Only health changes.
  Apply(Effects{});
}

void Hub::OnSubscribeConfirmed(const Topic& topic) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    TopicState* t = Find(topic);
    if (t == nullptr || t->upstream != UpstreamState::kSubscribing) return;
    t->upstream = UpstreamState::kLive;
    if (t->owes_reconnect_gap) {
      t->live->ForEach([&](const std::shared_ptr<Subscriber>& s) {
        AddNotify(s->PushControl(Event::Gap(topic, kGapRedisReconnect, 0)), &fx.notify);
      });
      SetOwesGap(t, false);
    }
    if (!t->waiting.empty()) {
      for (auto& s : t->waiting) AddNotify(s->PushControl(Event::Subscribed(topic)), &fx.notify);
      t->live = t->live->WithAll(std::move(t->waiting));
      t->waiting.clear();
    }
    Reconcile(t, &fx);
  }
  Apply(std::move(fx));
}

void Hub::OnSubscribeRefused(const Topic& topic, const absl::Status& why) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    TopicState* t = Find(topic);
    if (t == nullptr || t->upstream != UpstreamState::kSubscribing) return;
    std::vector<std::shared_ptr<Subscriber>> holders(t->waiting.begin(), t->waiting.end());
    t->live->ForEach([&](const std::shared_ptr<Subscriber>& s) { holders.push_back(s); });
    BRIDGE_LOG(Warning, "%s; telling its %d subscribers", why.ToString(), holders.size());
    // Each holder loses the topic, as if it had left, and hears why; its other topics
    // are untouched.
    for (const auto& s : holders) {
      s->topics().erase(topic);
      s->Purge(topic);
      AddNotify(s->PushControl(Event::Refused(topic)), &fx.notify);
    }
    SetOwesGap(t, false);
    MapFor(topic.kind).erase(topic.name);
  }
  Apply(std::move(fx));
}

void Hub::OnUnsubscribeConfirmed(const Topic& topic) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    TopicState* t = Find(topic);
    if (t == nullptr || t->upstream != UpstreamState::kUnsubscribing) return;
    t->upstream = UpstreamState::kIdle;
    Reconcile(t, &fx);
  }
  Apply(std::move(fx));
}

void Hub::OnMessage(const Topic& topic, std::string_view channel, std::string_view payload) {
  std::shared_ptr<const LiveList> targets;
  uint64_t seq;
  uint64_t fanout;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto& map = topic.kind == TopicKind::kPattern ? patterns_ : channels_;
    auto it = map.find(topic.name);
    if (it == map.end() || it->second.upstream != UpstreamState::kLive ||
        it->second.live->empty()) {
      return;
    }
    targets = it->second.live;
    // Messages arrive from one thread only, so a reader lock suffices to order seq.
    seq = it->second.seq.fetch_add(1, std::memory_order_relaxed) + 1;
    // Numbered under the lock: a leave sees it once the list it snapshots is taken.
    fanout = fanouts_started_.load(std::memory_order_relaxed) + 1;
    fanouts_started_.store(fanout, std::memory_order_relaxed);
    fanout_topic_.store(&it->second, std::memory_order_relaxed);
  }
  auto message = std::make_shared<const Message>(std::string(channel),
                                                 topic.is_pattern() ? topic.name : std::string(),
                                                 std::string(payload), seq);
  // Counted before any subscriber can see the message, so that a client that read it
  // finds it counted in /metrics. One writer, like fanouts_started_: no
  // read-modify-write needed.
  deliveries_.store(deliveries_.load(std::memory_order_relaxed) + targets->size(),
                    std::memory_order_relaxed);
  targets->ForEach([&](const std::shared_ptr<Subscriber>& s) {
    if (auto sink = s->PushMessage(message, fanout)) sink->OnReady();
  });
  fanouts_done_.store(fanout, std::memory_order_release);
}

void Hub::Publish(std::string channel, std::string payload, Upstream::PublishCallback done) {
  Publish(std::move(channel), std::move(payload), std::string(), std::move(done));
}

void Hub::Publish(std::string channel, std::string payload, std::string key,
                  Upstream::PublishCallback done) {
  if (absl::Status st = ValidateName("channel", channel); !st.ok()) return done(st);
  if (payload.size() > options_.max_payload_bytes) {
    return done(absl::ResourceExhaustedError(absl::StrFormat(
        "payload is %d bytes, the limit is %d", payload.size(), options_.max_payload_bytes)));
  }
  if (key.empty())
    return upstream_->Publish(std::move(channel), std::move(payload), std::move(done));
  if (key.size() > Upstream::kMaxPublishKeyBytes) {
    return done(
        absl::InvalidArgumentError(absl::StrFormat("idempotency key is %d bytes, the limit is %d",
                                                   key.size(), Upstream::kMaxPublishKeyBytes)));
  }
  upstream_->PublishWithKey(std::move(channel), std::move(payload), std::move(key),
                            std::move(done));
}

void Hub::Shutdown() {
  std::vector<std::shared_ptr<Sink>> notify;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    for (const auto& s : subscribers_) {
      AddNotify(s->Close(absl::UnavailableError("server is shutting down")), &notify);
    }
  }
  for (auto& sink : notify) sink->OnReady();
}

bool Hub::HealthyLocked() const { return connected_ && upstream_delivering_ && owing_ == 0; }

bool Hub::Healthy() const {
  absl::ReaderMutexLock lock(&mu_);
  return HealthyLocked();
}

HubStats Hub::Stats() const {
  HubStats stats;
  {
    absl::ReaderMutexLock lock(&mu_);
    stats.subscribers = subscribers_.size();
    stats.channels = channels_.size();
    stats.patterns = patterns_.size();
    stats.upstream_connected = connected_;
  }
  stats.messages = fanouts_started_.load(std::memory_order_relaxed);
  stats.deliveries = deliveries_.load(std::memory_order_relaxed);
  stats.dropped = totals_.dropped.load(std::memory_order_relaxed);
  stats.slow_consumers_disconnected = totals_.disconnected.load(std::memory_order_relaxed);
  return stats;
}

void Hub::Apply(Effects fx) {
  for (const auto& t : fx.subscribe) upstream_->Subscribe(t, fx.epoch);
  for (const auto& t : fx.unsubscribe) upstream_->Unsubscribe(t, fx.epoch);
  for (auto& sink : fx.notify) sink->OnReady();
  if (options_.on_health_change) {
    // Held across the callback on purpose: reports must not overtake each other, and the
    // callback only records the state.
    absl::MutexLock lock(&health_mu_);
    const bool healthy = Healthy();
    if (healthy != reported_health_) {
      reported_health_ = healthy;
      options_.on_health_change(healthy);
    }
  }
}

}  // namespace bridge::hub
