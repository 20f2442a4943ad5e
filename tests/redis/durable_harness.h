#ifndef BRIDGE_TESTS_REDIS_DURABLE_HARNESS_H_
#define BRIDGE_TESTS_REDIS_DURABLE_HARNESS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/hub/topic.h"
#include "bridge/hub/upstream.h"

namespace bridge::redis::durable_harness {

inline constexpr absl::Duration kDurableWait = absl::Seconds(10);

// The one answer of an upstream call, awaited with a deadline, with the thread it came on.
template <typename T>
class Answer {
 public:
  absl::AnyInvocable<void(absl::StatusOr<T>)> Callback() {
    return [this](absl::StatusOr<T> value) {
      absl::MutexLock lock(&mu_);
      ++calls_;
      value_ = std::move(value);
      thread_ = std::this_thread::get_id();
    };
  }
  absl::StatusOr<T> Await() {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_ > 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), kDurableWait)) {
      return absl::DeadlineExceededError("test: no answer");
    }
    return value_;
  }
  int calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  std::thread::id thread() const {
    absl::MutexLock lock(&mu_);
    return thread_;
  }

 private:
  mutable absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::StatusOr<T> value_ ABSL_GUARDED_BY(mu_) = absl::UnknownError("unset");
  std::thread::id thread_ ABSL_GUARDED_BY(mu_);
};

// Records what an upstream tells the hub: the connection's epoch, confirmed
// subscriptions and messages.
class DurableListener : public hub::UpstreamListener {
 public:
  struct Received {
    std::string channel;
    std::string payload;
  };

  void OnUpstreamConnected(uint64_t epoch) override {
    absl::MutexLock lock(&mu_);
    epoch_ = epoch;
  }
  void OnUpstreamDisconnected() override {
    absl::MutexLock lock(&mu_);
    epoch_ = 0;
  }
  void OnTopicsLost(const std::vector<hub::Topic>&) override {}
  void OnSubscribeConfirmed(const hub::Topic& topic) override {
    absl::MutexLock lock(&mu_);
    subscribed_.push_back(topic);
  }
  void OnUnsubscribeConfirmed(const hub::Topic&) override {}
  void OnSubscribeRefused(const hub::Topic& topic, const absl::Status& why) override {
    (void)topic;
    (void)why;
  }
  void OnMessage(const hub::Topic&, std::string_view channel, std::string_view payload) override {
    absl::MutexLock lock(&mu_);
    messages_.push_back({std::string(channel), std::string(payload)});
  }

  // The connection's epoch once connected; 0 on timeout.
  uint64_t AwaitConnected() {
    absl::MutexLock lock(&mu_);
    auto connected = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return epoch_ != 0; };
    mu_.AwaitWithTimeout(absl::Condition(&connected), kDurableWait);
    return epoch_;
  }
  bool AwaitSubscribed(const hub::Topic& topic) {
    absl::MutexLock lock(&mu_);
    auto confirmed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& t : subscribed_) {
        if (t == topic) return true;
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&confirmed), kDurableWait);
  }
  // The messages received, once there are at least `n`.
  std::vector<Received> AwaitMessages(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return messages_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kDurableWait);
    return messages_;
  }

 private:
  absl::Mutex mu_;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<hub::Topic> subscribed_ ABSL_GUARDED_BY(mu_);
  std::vector<Received> messages_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bridge::redis::durable_harness

#endif  // BRIDGE_TESTS_REDIS_DURABLE_HARNESS_H_
