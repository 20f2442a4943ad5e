#ifndef BRIDGE_TESTS_WS_THREADED_UPSTREAM_H_
#define BRIDGE_TESTS_WS_THREADED_UPSTREAM_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "bridge/hub/upstream.h"

namespace bridge::ws::testing {

// An upstream double that behaves like Redis from the hub's point of view: it confirms
// every order, and delivers what tests publish, from one thread of its own in order.
// Lets the WebSocket tests run without a redis-server.
class ThreadedUpstream : public hub::Upstream {
 public:
  ThreadedUpstream() : thread_([this] { Loop(); }) {}
  ~ThreadedUpstream() override {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    thread_.join();
  }

  void SetListener(hub::UpstreamListener* listener) override { listener_ = listener; }
  void Subscribe(const hub::Topic& topic, uint64_t) override {
    Post([this, topic] { listener_->OnSubscribeConfirmed(topic); });
  }
  void Unsubscribe(const hub::Topic& topic, uint64_t) override {
    Post([this, topic] { listener_->OnUnsubscribeConfirmed(topic); });
  }
  void Publish(std::string channel, std::string payload, PublishCallback done) override {
    auto shared = std::make_shared<PublishCallback>(std::move(done));
    Post([this, channel = std::move(channel), payload = std::move(payload), shared] {
      {
        absl::MutexLock lock(&mu_);
        published_.emplace_back(channel, payload);
      }
      (*shared)(int64_t{7});
    });
  }

  void Connect() {
    Post([this] { listener_->OnUpstreamConnected(++epoch_); });
  }
  void Disconnect() {
    Post([this] { listener_->OnUpstreamDisconnected(); });
  }
  // Delivers a message as Redis would for a SUBSCRIBE of `channel`.
  void Deliver(const std::string& channel, const std::string& payload) {
    Post([this, channel, payload] {
      listener_->OnMessage(hub::Topic::Channel(channel), channel, payload);
    });
  }
  void DeliverPattern(const std::string& pattern, const std::string& channel,
                      const std::string& payload) {
    Post([this, pattern, channel, payload] {
      listener_->OnMessage(hub::Topic::Pattern(pattern), channel, payload);
    });
  }
  // Waits until everything posted so far ran.
  void Flush() {
    absl::Notification n;
    Post([&n] { n.Notify(); });
    n.WaitForNotification();
  }
  std::vector<std::pair<std::string, std::string>> published() {
    absl::MutexLock lock(&mu_);
    return published_;
  }

 private:
  void Post(std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(fn));
  }
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ || !queue_.empty(); }
  void Loop() {
    for (;;) {
      std::function<void()> fn;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &ThreadedUpstream::HasWork));
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }

  hub::UpstreamListener* listener_ = nullptr;
  uint64_t epoch_ = 0;  // worker thread only
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::string>> published_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace bridge::ws::testing

#endif  // BRIDGE_TESTS_WS_THREADED_UPSTREAM_H_
