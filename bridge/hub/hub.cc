#include "bridge/hub/hub.h"

#include <algorithm>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_format.h"
#include "bridge/common/log.h"
#include "bridge/hub/durable_envelope.h"

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
                            const std::vector<std::string>& patterns,
                            const ResumePositions& resume) {
  for (const auto& c : channels) {
    if (absl::Status st = ValidateName("channel", c); !st.ok()) return st;
  }
  for (const auto& [c, position] : resume) {
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
    for (const auto& [c, position] : resume) topics.push_back(Topic::Channel(c));
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
    for (const auto& t : topics) {
      const StreamPosition* from = nullptr;
      if (!t.is_pattern()) {
        auto it = resume.find(t.name);
        if (it != resume.end()) from = &it->second;
      }
      Join(subscriber, t, from, &fx);
    }
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

void Hub::Join(const std::shared_ptr<Subscriber>& s, const Topic& topic,
               const StreamPosition* resume, Effects* fx) {
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
  if (inserted) {
    t.topic = topic;
    t.durable = !topic.is_pattern() && IsDurable(topic.name);
  }
  if (resume != nullptr && t.durable) {
    // Held from before it can be in a live list: no live message passes the history.
    s->BeginResume(topic);
    t.resumers.emplace_back(s, *resume);
  }
  if (connected_ && t.upstream == UpstreamState::kLive) {
    t.live = t.live->With(s);
    AddNotify(s->PushControl(Event::Subscribed(topic)), &fx->notify);
    StartResumes(&t, fx);
    return;
  }
  t.waiting.push_back(s);
  Reconcile(&t, fx);
}

void Hub::StartResumes(TopicState* t, Effects* fx) {
  if (t->resumers.empty() || t->recovery != 0 || t->upstream != UpstreamState::kLive) return;
  // Subscribers that resume from one position share a read. Each of them is live already,
  // so what the read misses reaches them live. A read of that position already sent may
  // have looked before they joined: they wait for the next.
  absl::flat_hash_map<std::pair<uint64_t, std::string>, size_t> started;
  for (auto& [s, since] : t->resumers) {
    auto key = std::make_pair(since.offset, since.epoch);
    if (auto it = started.find(key); it != started.end()) {
      fx->reads[it->second].resumers.push_back(std::move(s));
      continue;
    }
    auto [in_flight, added] = t->resume_reads.try_emplace(key);
    if (!added) {
      in_flight->second.push_back(std::move(s));
      continue;
    }
    started.emplace(std::move(key), fx->reads.size());
    fx->reads.push_back(Read{Read::Kind::kResume, t->topic, since, 0, {std::move(s)}});
  }
  t->resumers.clear();
}

void Hub::AbandonRecovery(TopicState* t) {
  t->recovery = 0;
  t->recovery_targets.reset();
  t->held.clear();
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
  t->resumers.erase(std::remove_if(t->resumers.begin(), t->resumers.end(),
                                   [&](const auto& r) { return r.first == s; }),
                    t->resumers.end());
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
        AbandonRecovery(&t);
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
      AbandonRecovery(t);
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
    const bool position_known = t->delivered.offset > 0 || t->known.has_value();
    if (t->owes_reconnect_gap && t->durable && position_known) {
      // What the live subscribers missed is in the history: one read for all of them.
      // Live messages wait behind it, and the subscribers stay owed until it is done.
      t->recovery = ++last_recovery_;
      t->recovery_targets = t->live;
      fx.reads.push_back(Read{Read::Kind::kRecovery,
                              topic,
                              t->delivered.offset > 0 ? t->delivered : *t->known,
                              t->recovery,
                              {}});
    } else if (t->owes_reconnect_gap) {
      t->live->ForEach([&](const std::shared_ptr<Subscriber>& s) {
        AddNotify(s->PushControl(Event::Gap(topic, kGapRedisReconnect, 0)), &fx.notify);
      });
      SetOwesGap(t, false);
    } else if (t->durable && !position_known) {
      fx.reads.push_back(Read{Read::Kind::kLearn, topic, {}, 0, {}});
    }
    if (!t->waiting.empty()) {
      for (auto& s : t->waiting) AddNotify(s->PushControl(Event::Subscribed(topic)), &fx.notify);
      t->live = t->live->WithAll(std::move(t->waiting));
      t->waiting.clear();
    }
    StartResumes(t, &fx);
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
  uint64_t seq = 0;
  uint64_t fanout = 0;
  StreamPosition position;
  if (auto sealed = OpenEnvelope(payload)) {
    position.offset = sealed->offset;
    position.epoch = sealed->epoch;
    payload = sealed->payload;
  }
  bool hold = false;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto& map = topic.kind == TopicKind::kPattern ? patterns_ : channels_;
    auto it = map.find(topic.name);
    if (it == map.end() || it->second.upstream != UpstreamState::kLive ||
        it->second.live->empty()) {
      return;
    }
    TopicState& t = it->second;
    if (position.offset > 0 && t.durable) {
      // Only the upstream's sequence reads or writes `delivered`, and `recovery` changes
      // only there too, so the reader lock suffices for them.
      if (t.recovery != 0) {
        hold = true;
      } else if (position.epoch == t.delivered.epoch && position.offset <= t.delivered.offset) {
        return;  // Recovered from the history already; its live delivery came late.
      } else {
        t.delivered = position;
      }
    }
    if (!hold) {
      targets = t.live;
      // Messages arrive from one thread only, so a reader lock suffices to order seq.
      seq = t.seq.fetch_add(1, std::memory_order_relaxed) + 1;
      // Numbered under the lock: a leave sees it once the list it snapshots is taken.
      fanout = fanouts_started_.load(std::memory_order_relaxed) + 1;
      fanouts_started_.store(fanout, std::memory_order_relaxed);
      fanout_topic_.store(&t, std::memory_order_relaxed);
    }
  }
  if (hold) return Hold(topic, std::move(position), payload);
  auto message = std::make_shared<const Message>(std::string(channel),
                                                 topic.is_pattern() ? topic.name : std::string(),
                                                 std::string(payload), seq, std::move(position));
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

void Hub::Hold(const Topic& topic, StreamPosition position, std::string_view payload) {
  absl::MutexLock lock(&mu_);
  TopicState* t = Find(topic);
  // Recovery can only end in the upstream's sequence, which is running this call.
  if (t != nullptr && t->recovery != 0) t->held.emplace_back(std::move(position), payload);
}

bool Hub::IsDurable(std::string_view channel) const {
  return options_.durable && options_.durable(channel).has_value();
}

void Hub::Publish(std::string channel, std::string payload, std::string key, PublishCallback done) {
  if (absl::Status st = ValidateName("channel", channel); !st.ok()) return done(st);
  if (payload.size() > options_.max_payload_bytes) {
    return done(absl::ResourceExhaustedError(absl::StrFormat(
        "payload is %d bytes, the limit is %d", payload.size(), options_.max_payload_bytes)));
  }
  if (key.size() > Upstream::kMaxPublishKeyBytes) {
    return done(
        absl::InvalidArgumentError(absl::StrFormat("idempotency key is %d bytes, the limit is %d",
                                                   key.size(), Upstream::kMaxPublishKeyBytes)));
  }
  if (std::optional<HistoryPolicy> policy =
          options_.durable ? options_.durable(channel) : std::nullopt) {
    DurablePublish request{std::move(channel), std::move(payload), std::move(key), *policy};
    return upstream_->PublishDurable(
        std::move(request), [done = std::move(done)](absl::StatusOr<DurablePublished> r) mutable {
          if (!r.ok()) return done(r.status());
          done(PublishResult{r->receivers, r->duplicate, std::move(r->position)});
        });
  }
  auto answer = [done = std::move(done)](absl::StatusOr<int64_t> receivers) mutable {
    if (!receivers.ok()) return done(receivers.status());
    if (*receivers == Upstream::kAlreadyPublished) return done(PublishResult{0, true, {}});
    done(PublishResult{*receivers, false, {}});
  };
  if (key.empty()) {
    return upstream_->Publish(std::move(channel), std::move(payload), std::move(answer));
  }
  upstream_->PublishWithKey(std::move(channel), std::move(payload), std::move(key),
                            std::move(answer));
}

void Hub::History(std::string channel, std::optional<StreamPosition> since, size_t limit,
                  HistoryCallback done) {
  if (absl::Status st = ValidateName("channel", channel); !st.ok()) return done(st);
  if (!IsDurable(channel)) {
    return done(absl::FailedPreconditionError(
        absl::StrFormat("channel %s is not durable on this server", channel)));
  }
  if (limit == 0 || limit > options_.history_page) limit = options_.history_page;
  auto answer = [channel, done = std::move(done)](absl::StatusOr<Recovery> r) mutable {
    if (!r.ok()) return done(r.status());
    HistoryResult out;
    out.epoch = r->page.epoch;
    out.top = r->page.top;
    out.history_lost = r->lost;
    out.lost = r->lost_count;
    out.messages.reserve(r->page.entries.size());
    for (auto& e : r->page.entries) {
      out.messages.push_back(
          std::make_shared<const Message>(channel, std::string(), std::move(e.payload), 0,
                                          StreamPosition{e.offset, r->page.epoch}, true));
    }
    done(std::move(out));
  };
  // One page: a client pages on from the last offset it got.
  if (since.has_value()) return ReadSince(channel, *since, limit, true, std::move(answer));
  ReadPages(HistoryQuery{channel, std::nullopt, limit}, Recovery{}, std::move(answer),
            /*one_page=*/true);
}

void Hub::ReadPages(HistoryQuery query, Recovery acc, RecoveryCallback done, bool one_page) {
  const size_t asked = query.limit;
  HistoryQuery next = query;
  upstream_->ReadHistory(
      std::move(query), [this, next = std::move(next), acc = std::move(acc), asked, one_page,
                         done = std::move(done)](absl::StatusOr<HistoryPage> page) mutable {
        if (!page.ok()) return done(page.status());
        const bool first = acc.page.epoch.empty() && acc.page.entries.empty();
        if (!first && page->epoch != acc.page.epoch) {
          // The history was lost between two pages: what was read stands, the rest is
          // gone with it.
          return done(std::move(acc));
        }
        acc.page.epoch = std::move(page->epoch);
        acc.page.top = std::max(acc.page.top, page->top);
        const bool full = page->entries.size() >= asked;
        for (auto& e : page->entries) acc.page.entries.push_back(std::move(e));
        if (one_page || !full || acc.page.entries.empty() || !next.after.has_value() ||
            acc.page.entries.back().offset >= acc.page.top) {
          return done(std::move(acc));
        }
        next.after = acc.page.entries.back().offset;
        ReadPages(std::move(next), std::move(acc), std::move(done), false);
      });
}

void Hub::ReadSince(std::string channel, StreamPosition since, size_t limit, bool one_page,
                    RecoveryCallback done) {
  HistoryQuery query{channel, since.offset, limit};
  ReadPages(
      std::move(query), Recovery{},
      [this, channel, since, limit, one_page,
       done = std::move(done)](absl::StatusOr<Recovery> r) mutable {
        if (!r.ok()) return done(r.status());
        if (since.offset == 0 || r->page.epoch == since.epoch) {
          const auto& entries = r->page.entries;
          const uint64_t first = entries.empty() ? r->page.top + 1 : entries.front().offset;
          if (first > since.offset + 1 && r->page.top > since.offset) {
            r->lost = true;
            r->lost_count = first - since.offset - 1;
          }
          return done(std::move(r));
        }
        if (r->page.epoch.empty()) {
          // No history at all any more.
          r->lost = true;
          return done(std::move(r));
        }
        // Another epoch: everything from the oldest message kept.
        ReadPages(
            HistoryQuery{channel, 0, limit}, Recovery{},
            [done = std::move(done)](absl::StatusOr<Recovery> r) mutable {
              if (r.ok()) r->lost = true;
              done(std::move(r));
            },
            one_page);
      },
      one_page);
}

void Hub::StartRead(Read read) {
  switch (read.kind) {
    case Read::Kind::kLearn:
      return upstream_->ReadHistory(
          HistoryQuery{read.topic.name, std::nullopt, 1},
          [this, topic = read.topic](absl::StatusOr<HistoryPage> page) {
            if (!page.ok()) return;  // Learnt at the next confirmation, or from a message.
            absl::MutexLock lock(&mu_);
            TopicState* t = Find(topic);
            if (t == nullptr || t->delivered.offset > 0) return;
            t->known = StreamPosition{page->top, page->epoch};
          });
    case Read::Kind::kRecovery:
      return ReadSince(read.topic.name, read.since, options_.history_page, false,
                       [this, topic = read.topic, id = read.id](absl::StatusOr<Recovery> r) {
                         OnRecoveryRead(topic, id, std::move(r));
                       });
    case Read::Kind::kResume:
      return ReadSince(
          read.topic.name, read.since, options_.history_page, false,
          [this, topic = read.topic, since = read.since, resumers = std::move(read.resumers)](
              absl::StatusOr<Recovery> r) { OnResumeRead(topic, since, resumers, std::move(r)); });
  }
}

void Hub::OnRecoveryRead(const Topic& topic, uint64_t id, absl::StatusOr<Recovery> result) {
  Effects fx;
  size_t recovered = 0;
  {
    absl::MutexLock lock(&mu_);
    TopicState* t = Find(topic);
    if (t == nullptr || t->recovery != id) return;  // Abandoned: lost again, or left.
    // Only subscribers that still hold the topic. No live message can overtake these:
    // this runs in the upstream's sequence, as the fan-outs do.
    std::vector<std::shared_ptr<Subscriber>> targets;
    t->recovery_targets->ForEach([&](const std::shared_ptr<Subscriber>& s) {
      if (s->topics().contains(topic)) targets.push_back(s);
    });
    auto push_control = [&](const Event& e) {
      for (const auto& s : targets) AddNotify(s->PushControl(e), &fx.notify);
    };
    auto fan_out = [&](const std::vector<std::shared_ptr<Subscriber>>& to, StreamPosition pos,
                       std::string payload, bool from_history) {
      const uint64_t seq = t->seq.fetch_add(1, std::memory_order_relaxed) + 1;
      auto m = std::make_shared<const Message>(topic.name, std::string(), std::move(payload), seq,
                                               pos, from_history);
      t->delivered = std::move(pos);
      // Numbered past every fan-out started: none runs beside this (one sequence), so a
      // subscriber that left and joined again meanwhile must not take it for a stale one.
      const uint64_t after_all = fanouts_started_.load(std::memory_order_relaxed) + 1;
      for (const auto& s : to) AddNotify(s->PushMessage(m, after_all), &fx.notify);
      deliveries_.store(deliveries_.load(std::memory_order_relaxed) + to.size(),
                        std::memory_order_relaxed);
    };
    if (!result.ok()) {
      BRIDGE_LOG(Warning, "could not read the history of %s to recover it: %s", topic.name,
                 result.status().ToString());
      push_control(Event::Gap(topic, kGapRedisReconnect, 0));
    } else {
      if (result->lost) {
        history_lost_.fetch_add(1, std::memory_order_relaxed);
        push_control(Event::Gap(topic, kGapHistoryLost, result->lost_count));
      }
      for (auto& e : result->page.entries) {
        StreamPosition pos{e.offset, result->page.epoch};
        if (pos.epoch == t->delivered.epoch && pos.offset <= t->delivered.offset) continue;
        fan_out(targets, std::move(pos), std::move(e.payload), true);
        ++recovered;
      }
    }
    // Then the live messages held meanwhile, to every live subscriber.
    std::vector<std::shared_ptr<Subscriber>> live;
    t->live->ForEach([&](const std::shared_ptr<Subscriber>& s) { live.push_back(s); });
    for (auto& [pos, payload] : t->held) {
      if (pos.epoch == t->delivered.epoch && pos.offset <= t->delivered.offset) continue;
      fan_out(live, std::move(pos), std::move(payload), false);
    }
    AbandonRecovery(t);
    SetOwesGap(t, false);
    StartResumes(t, &fx);
  }
  recovered_messages_.fetch_add(recovered, std::memory_order_relaxed);
  BRIDGE_LOG(Info, "recovered %d messages of %s from its history", recovered, topic.name);
  Apply(std::move(fx));
}

void Hub::OnResumeRead(const Topic& topic, const StreamPosition& since,
                       const std::vector<std::shared_ptr<Subscriber>>& resumers,
                       absl::StatusOr<Recovery> result) {
  std::vector<std::shared_ptr<const Message>> messages;
  std::optional<Event> gap;
  StreamPosition after = since;
  if (!result.ok()) {
    BRIDGE_LOG(Warning, "could not read the history of %s for a resume: %s", topic.name,
               result.status().ToString());
    gap = Event::Gap(topic, kGapHistoryLost, 0);
  } else {
    if (result->lost) gap = Event::Gap(topic, kGapHistoryLost, result->lost_count);
    if (result->page.epoch != since.epoch) after = StreamPosition{0, result->page.epoch};
    resumed_messages_.fetch_add(result->page.entries.size(), std::memory_order_relaxed);
    messages.reserve(result->page.entries.size());
    for (auto& e : result->page.entries) {
      messages.push_back(
          std::make_shared<const Message>(topic.name, std::string(), std::move(e.payload), 0,
                                          StreamPosition{e.offset, result->page.epoch}, true));
    }
  }
  if (gap) history_lost_.fetch_add(1, std::memory_order_relaxed);
  resumes_.fetch_add(resumers.size(), std::memory_order_relaxed);
  Effects fx;
  for (const auto& s : resumers) {
    AddNotify(s->EndResume(topic, gap ? &*gap : nullptr, messages, after), &fx.notify);
  }
  {
    // Those that asked for this position while the read was out get the next one.
    absl::MutexLock lock(&mu_);
    if (TopicState* t = Find(topic)) {
      auto it = t->resume_reads.find(std::make_pair(since.offset, since.epoch));
      if (it != t->resume_reads.end()) {
        std::vector<std::shared_ptr<Subscriber>> next = std::move(it->second);
        t->resume_reads.erase(it);
        for (auto& s : next) {
          if (s->topics().contains(topic)) t->resumers.emplace_back(std::move(s), since);
        }
        StartResumes(t, &fx);
      }
    }
  }
  Apply(std::move(fx));
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
  stats.recovered_messages = recovered_messages_.load(std::memory_order_relaxed);
  stats.resumed_messages = resumed_messages_.load(std::memory_order_relaxed);
  stats.resumes = resumes_.load(std::memory_order_relaxed);
  stats.history_lost = history_lost_.load(std::memory_order_relaxed);
  return stats;
}

void Hub::Apply(Effects fx) {
  for (auto& read : fx.reads) StartRead(std::move(read));
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
