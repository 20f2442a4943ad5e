#include "bridge/hub/subscriber.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "bridge/common/burst.h"

namespace bridge::hub {
namespace {

size_t CostOf(const Message& m) { return m.payload().size() + m.channel().size(); }

}  // namespace

Subscriber::Subscriber(std::shared_ptr<Sink> sink, const SubscriberOptions& options,
                       SubscriberTotals* totals)
    : options_(options), totals_(totals), sink_(std::move(sink)) {}

std::shared_ptr<Sink> Subscriber::ArmedSinkLocked() {
  if (!armed_) return nullptr;
  armed_ = false;
  return sink_;
}

std::shared_ptr<Sink> Subscriber::PushMessage(const std::shared_ptr<const Message>& message,
                                              uint64_t fanout) {
  absl::MutexLock lock(&mu_);
  if (!status_.ok()) return nullptr;
  if (!stale_.empty()) {
    // Fan-outs run one after another: once a later one reaches this subscriber, the ones
    // that could carry a left topic's messages are over.
    if (fanout > stale_max_) {
      stale_.clear();
    } else if (auto it = stale_.find(message->topic());
               it != stale_.end() && fanout <= it->second) {
      return nullptr;
    }
  }
  if (resumes_ != nullptr && ResumeTakesLocked(message)) return nullptr;
  return QueueMessageLocked(message);
}

bool Subscriber::ResumeTakesLocked(const std::shared_ptr<const Message>& message) {
  auto it = resumes_->find(message->topic());
  if (it == resumes_->end()) return false;
  Resume& r = it->second;
  if (r.holding) {
    if (r.held.size() >= options_.max_queued_messages) {
      r.held.erase(r.held.begin());
      ++dropped_[it->first];
      if (totals_ != nullptr) totals_->dropped.fetch_add(1, std::memory_order_relaxed);
    }
    r.held.push_back(message);
    return true;
  }
  if (message->position().epoch == r.floor.epoch && message->offset() <= r.floor.offset) {
    return true;
  }
  // Messages of one channel come in order: once one is past the floor, so are the rest.
  resumes_->erase(it);
  if (resumes_->empty()) resumes_.reset();
  return false;
}

void Subscriber::BeginResume(const Topic& topic) {
  absl::MutexLock lock(&mu_);
  if (!status_.ok()) return;
  if (resumes_ == nullptr) resumes_ = std::make_unique<absl::flat_hash_map<Topic, Resume>>();
  (*resumes_)[topic] = Resume{};
}

std::shared_ptr<Sink> Subscriber::EndResume(
    const Topic& topic, const Event* gap,
    const std::vector<std::shared_ptr<const Message>>& recovered, const StreamPosition& after) {
  absl::MutexLock lock(&mu_);
  if (!status_.ok() || resumes_ == nullptr) return nullptr;
  auto it = resumes_->find(topic);
  if (it == resumes_->end() || !it->second.holding) return nullptr;
  std::vector<std::shared_ptr<const Message>> held = std::move(it->second.held);
  StreamPosition floor = recovered.empty() ? after : recovered.back()->position();
  std::shared_ptr<Sink> sink;
  auto keep = [&](std::shared_ptr<Sink> s) {
    if (s != nullptr) sink = std::move(s);
  };
  if (gap != nullptr) {
    PushLocked(*gap);
    keep(ArmedSinkLocked());
  }
  for (const auto& m : recovered) {
    keep(QueueMessageLocked(m));
    if (!status_.ok()) return sink;
  }
  for (const auto& m : held) {
    if (m->position().epoch == floor.epoch && m->offset() <= floor.offset) continue;
    keep(QueueMessageLocked(m));
    if (!status_.ok()) return sink;
    floor = m->position();
  }
  it->second.holding = false;
  it->second.floor = std::move(floor);
  return sink;
}

std::shared_ptr<Sink> Subscriber::QueueMessageLocked(
    const std::shared_ptr<const Message>& message) {
  const size_t cost = CostOf(*message);
  auto full = [&] {
    return queued_messages_ >= options_.max_queued_messages ||
           queued_bytes_ + cost > options_.max_queued_bytes;
  };
  if (cost > options_.max_queued_bytes) {
    // Larger than the whole byte budget: it can never be queued, and evicting the
    // others for it would lose them too. The gap takes its place in the order; a run of
    // them is one gap.
    if (totals_ != nullptr) totals_->dropped.fetch_add(1, std::memory_order_relaxed);
    Topic topic = message->topic();
    if (!queue_.empty() && queue_.back().type == Event::Type::kGap &&
        queue_.back().reason == kGapSlowConsumer && queue_.back().topic == topic) {
      ++queue_.back().dropped;
      return nullptr;  // the gap is queued, so the sink has been told
    }
    PushLocked(Event::Gap(std::move(topic), kGapSlowConsumer, 1));
    return ArmedSinkLocked();
  }
  if (full()) {
    if (options_.policy == SlowConsumerPolicy::kDisconnect) {
      if (totals_ != nullptr) totals_->disconnected.fetch_add(1, std::memory_order_relaxed);
      return CloseLocked(absl::ResourceExhaustedError(absl::StrFormat(
          "slow consumer: queue full (%d messages, %d bytes)", queued_messages_, queued_bytes_)));
    }
    while (full() && queued_messages_ > 0) DropOldestLocked();
  }
  ++queued_messages_;
  queued_bytes_ += cost;
  PushLocked(Event::OfMessage(message));
  return ArmedSinkLocked();
}

void Subscriber::PushLocked(Event event) {
  if (queue_.full()) queue_.set_capacity(std::max<size_t>(2, 2 * queue_.capacity()));
  queue_.push_back(std::move(event));
}

void Subscriber::ShrinkIfEmptyLocked() {
  // A burst's ring is not kept by a subscriber that caught up; a small one is, so that
  // steady traffic does not reallocate it.
  if (queue_.empty()) ClearAfterBurst(queue_, kKeptCapacity);
}

void Subscriber::DropOldestLocked() {
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->type != Event::Type::kMessage) continue;
    --queued_messages_;
    queued_bytes_ -= CostOf(*it->message);
    ++dropped_[it->message->topic()];
    if (totals_ != nullptr) totals_->dropped.fetch_add(1, std::memory_order_relaxed);
    // The oldest message is at or near the front: shift what is before it, not after.
    queue_.rerase(it);
    return;
  }
}

std::shared_ptr<Sink> Subscriber::PushControl(Event event) {
  absl::MutexLock lock(&mu_);
  if (!status_.ok()) return nullptr;
  // Control events are few and small; they do not count against the bounds, so a full
  // queue never loses a Subscribed or a reconnect Gap.
  if (event.type == Event::Type::kSubscribed && !confirming_.insert(event.topic).second) {
    return nullptr;
  }
  PushLocked(std::move(event));
  return ArmedSinkLocked();
}

std::shared_ptr<Sink> Subscriber::Close(absl::Status why) {
  absl::MutexLock lock(&mu_);
  if (!status_.ok()) return nullptr;
  return CloseLocked(std::move(why));
}

std::shared_ptr<Sink> Subscriber::CloseLocked(absl::Status why) {
  status_ = std::move(why);
  boost::circular_buffer<Event>().swap(queue_);
  dropped_.clear();
  confirming_.clear();
  stale_.clear();
  resumes_.reset();
  queued_messages_ = 0;
  queued_bytes_ = 0;
  armed_ = false;
  return sink_;
}

void Subscriber::Purge(const Topic& topic, uint64_t stale_until) {
  absl::MutexLock lock(&mu_);
  dropped_.erase(topic);
  confirming_.erase(topic);
  if (resumes_ != nullptr) {
    resumes_->erase(topic);
    if (resumes_->empty()) resumes_.reset();
  }
  if (stale_until > 0) {
    stale_[topic] = stale_until;
    stale_max_ = std::max(stale_max_, stale_until);
  }
  for (auto it = queue_.begin(); it != queue_.end();) {
    const bool match =
        it->type == Event::Type::kMessage ? it->message->topic() == topic : it->topic == topic;
    if (!match) {
      ++it;
      continue;
    }
    if (it->type == Event::Type::kMessage) {
      --queued_messages_;
      queued_bytes_ -= CostOf(*it->message);
    }
    it = queue_.erase(it);
  }
  ShrinkIfEmptyLocked();
}

void Subscriber::DetachSink() {
  std::shared_ptr<Sink> sink;
  {
    absl::MutexLock lock(&mu_);
    sink = std::move(sink_);
  }
  // The sink may be the last reference to its front end object; release it unlocked.
}

bool Subscriber::TakeLocked(Event* out) {
  // Control events at the head are older than anything dropped; after them come the
  // gaps for dropped messages, which are older than every message still queued.
  if (!queue_.empty() && queue_.front().type != Event::Type::kMessage) {
    *out = std::move(queue_.front());
    queue_.pop_front();
    if (out->type == Event::Type::kSubscribed) confirming_.erase(out->topic);
    ShrinkIfEmptyLocked();
    return true;
  }
  if (!dropped_.empty()) {
    auto it = dropped_.begin();
    *out = Event::Gap(it->first, kGapSlowConsumer, it->second);
    dropped_.erase(it);
    return true;
  }
  if (queue_.empty()) return false;
  *out = std::move(queue_.front());
  queue_.pop_front();
  --queued_messages_;
  queued_bytes_ -= CostOf(*out->message);
  ShrinkIfEmptyLocked();
  return true;
}

Subscriber::PopResult Subscriber::Pop(Event* out) {
  absl::MutexLock lock(&mu_);
  if (!status_.ok()) return PopResult::kClosed;
  if (TakeLocked(out)) return PopResult::kEvent;
  armed_ = true;
  return PopResult::kEmpty;
}

Subscriber::PopResult Subscriber::PopMany(std::vector<Event>* out, size_t max) {
  absl::MutexLock lock(&mu_);
  if (!status_.ok()) return PopResult::kClosed;
  size_t taken = 0;
  Event e;
  while (taken < max && TakeLocked(&e)) {
    out->push_back(std::move(e));
    ++taken;
  }
  if (taken > 0) return PopResult::kEvent;
  armed_ = true;
  return PopResult::kEmpty;
}

absl::Status Subscriber::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

}  // namespace bridge::hub
