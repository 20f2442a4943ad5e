#ifndef BRIDGE_TESTS_HUB_FAKE_UPSTREAM_H_
#define BRIDGE_TESTS_HUB_FAKE_UPSTREAM_H_

#include <atomic>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "bridge/hub/durable_envelope.h"
#include "bridge/hub/upstream.h"

namespace bridge::hub {

// An upstream that behaves like one Redis connection: orders are confirmed in the
// order they were given, when the test says so. It tracks what Redis would hold.
class FakeUpstream : public Upstream {
 public:
  struct Order {
    bool subscribe;
    Topic topic;
    uint64_t epoch;
  };

  void SetListener(UpstreamListener* l) override { listener_ = l; }
  void Subscribe(const Topic& t, uint64_t epoch) override {
    absl::MutexLock lock(&mu_);
    orders_.push_back({true, t, epoch});
    ++subscribe_calls_;
  }
  void Unsubscribe(const Topic& t, uint64_t epoch) override {
    absl::MutexLock lock(&mu_);
    orders_.push_back({false, t, epoch});
  }
  void Publish(std::string channel, std::string payload, PublishCallback done) override {
    last_publish_ = channel + "=" + payload;
    done(int64_t{7});
  }

  // Durable channels: a history per channel, as the broker's script keeps it. A publish
  // is stored at once and delivered when the test says so (DeliverOne); reads wait for
  // CompleteReads, so a test chooses what a read sees and what arrives around it.
  void PublishDurable(DurablePublish request, DurablePublishCallback done) override {
    DurablePublished out;
    {
      absl::MutexLock lock(&mu_);
      History& h = histories_[request.channel];
      if (h.epoch.empty()) h.epoch = std::to_string(1000 + ++epochs_);
      h.entries.push_back({++h.top, request.payload});
      while (h.entries.size() > request.policy.max_len) h.entries.erase(h.entries.begin());
      undelivered_.push_back({request.channel, SealEnvelope(h.epoch, h.top, request.payload)});
      out.receivers = 1;
      out.position = {h.top, h.epoch};
    }
    done(std::move(out));
  }
  void ReadHistory(HistoryQuery query, HistoryCallback done) override {
    absl::MutexLock lock(&mu_);
    reads_.push_back({std::move(query), std::move(done)});
    ++reads_made_;
  }
  // Delivers the oldest undelivered durable message as Redis would on the channel's
  // subscription; false when none is left.
  bool DeliverOne() {
    std::pair<std::string, std::string> m;
    {
      absl::MutexLock lock(&mu_);
      if (undelivered_.empty()) return false;
      m = std::move(undelivered_.front());
      undelivered_.pop_front();
    }
    listener_->OnMessage(Topic::Channel(m.first), m.first, m.second);
    return true;
  }
  void DeliverAll() {
    while (DeliverOne()) {
    }
  }
  // Published messages not delivered are lost, as a dropped connection loses them.
  void LoseUndelivered() {
    absl::MutexLock lock(&mu_);
    undelivered_.clear();
  }
  // The broker lost the channel's history: the next publish starts a new epoch.
  void ForgetHistory(const std::string& channel) {
    absl::MutexLock lock(&mu_);
    histories_.erase(channel);
  }
  // Answers the reads made so far from the history as it is now; returns how many.
  // Reads made by the answers are left for the next call.
  int CompleteReads() {
    std::deque<std::pair<HistoryQuery, HistoryCallback>> reads;
    {
      absl::MutexLock lock(&mu_);
      reads.swap(reads_);
    }
    for (auto& [q, done] : reads) {
      HistoryPage page;
      {
        absl::MutexLock lock(&mu_);
        auto it = histories_.find(q.channel);
        if (it != histories_.end()) {
          page.epoch = it->second.epoch;
          page.top = it->second.top;
          std::vector<HistoryEntry> all;
          for (const auto& e : it->second.entries) {
            if (!q.after.has_value() || e.offset > *q.after) all.push_back(e);
          }
          if (q.after.has_value()) {
            if (all.size() > q.limit) all.resize(q.limit);
          } else if (all.size() > q.limit) {
            all.erase(all.begin(), all.end() - static_cast<ptrdiff_t>(q.limit));
          }
          page.entries = std::move(all);
        }
      }
      done(std::move(page));
    }
    return static_cast<int>(reads.size());
  }
  // Completes reads until none is left.
  void CompleteAllReads() {
    while (CompleteReads() > 0) {
    }
  }
  int reads_made() {
    absl::MutexLock lock(&mu_);
    return reads_made_;
  }

  // Confirms the oldest order, as Redis would; false when none is pending.
  bool ConfirmOne() {
    Order o;
    {
      absl::MutexLock lock(&mu_);
      if (orders_.empty()) return false;
      o = orders_.front();
      orders_.pop_front();
      if (o.epoch != epoch_) return true;  // For an older connection: dropped.
      if (o.subscribe) {
        redis_[o.topic]++;
      } else {
        redis_.erase(o.topic);
      }
    }
    if (o.subscribe) {
      listener_->OnSubscribeConfirmed(o.topic);
    } else {
      listener_->OnUnsubscribeConfirmed(o.topic);
    }
    return true;
  }
  // Refuses the oldest order, a subscribe, as Redis refuses a channel an ACL forbids;
  // false when the oldest order is not a subscribe.
  bool RefuseOne(const absl::Status& why) {
    Order o;
    {
      absl::MutexLock lock(&mu_);
      if (orders_.empty() || !orders_.front().subscribe) return false;
      o = orders_.front();
      orders_.pop_front();
    }
    listener_->OnSubscribeRefused(o.topic, why);
    return true;
  }
  void ConfirmAll() {
    while (ConfirmOne()) {
    }
  }
  void Connect(uint64_t epoch) {
    {
      absl::MutexLock lock(&mu_);
      epoch_ = epoch;
    }
    listener_->OnUpstreamConnected(epoch);
  }
  void Drop() {
    {
      absl::MutexLock lock(&mu_);
      redis_.clear();
      orders_.clear();
    }
    listener_->OnUpstreamDisconnected();
  }
  // Loses some topics while staying connected, as one shard of a cluster does: what
  // Redis held of them is gone, and their orders in flight will not be confirmed.
  void Lose(const std::vector<Topic>& topics) {
    {
      absl::MutexLock lock(&mu_);
      for (const Topic& t : topics) {
        redis_.erase(t);
        std::erase_if(orders_, [&](const Order& o) { return o.topic == t; });
      }
    }
    listener_->OnTopicsLost(topics);
  }
  size_t pending() {
    absl::MutexLock lock(&mu_);
    return orders_.size();
  }
  std::vector<Order> orders() {
    absl::MutexLock lock(&mu_);
    return {orders_.begin(), orders_.end()};
  }
  // How many times Redis would count the topic as subscribed by this connection: a
  // SUBSCRIBE to a channel already held does not add a second subscription in Redis,
  // but the hub must never send one, so it is counted here.
  int held(const Topic& t) {
    absl::MutexLock lock(&mu_);
    auto it = redis_.find(t);
    return it == redis_.end() ? 0 : it->second;
  }
  absl::flat_hash_map<Topic, int> redis() {
    absl::MutexLock lock(&mu_);
    return redis_;
  }
  int subscribe_calls() {
    absl::MutexLock lock(&mu_);
    return subscribe_calls_;
  }
  UpstreamListener* listener() { return listener_; }
  std::string last_publish_;

 private:
  UpstreamListener* listener_ = nullptr;
  absl::Mutex mu_;
  std::deque<Order> orders_;
  absl::flat_hash_map<Topic, int> redis_;
  uint64_t epoch_ = 0;
  int subscribe_calls_ = 0;
  struct History {
    std::string epoch;
    uint64_t top = 0;
    std::vector<HistoryEntry> entries;
  };
  absl::flat_hash_map<std::string, History> histories_;
  int epochs_ = 0;
  std::deque<std::pair<std::string, std::string>> undelivered_;
  std::deque<std::pair<HistoryQuery, HistoryCallback>> reads_;
  int reads_made_ = 0;
};

// A sink that counts its wake-ups.
class CountingSink : public Sink {
 public:
  void OnReady() override { ready_.fetch_add(1); }
  int ready() const { return ready_.load(); }

 private:
  std::atomic<int> ready_{0};
};

}  // namespace bridge::hub

#endif  // BRIDGE_TESTS_HUB_FAKE_UPSTREAM_H_
