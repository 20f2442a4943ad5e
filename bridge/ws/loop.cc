#include "bridge/ws/loop.h"

#include <utility>

#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/post.hpp"
#include "bridge/common/burst.h"
#include "bridge/ws/ws_session.h"

namespace bridge::ws {

namespace asio = boost::asio;

// A burst's lists are not kept once it is over; this many entries are.
constexpr size_t kKeptReady = 1024;

// A concurrency hint of 1: the io_context is run by one thread, and takes no locks it
// does not need.
Loop::Loop() : ioc_(std::make_unique<asio::io_context>(1)) {}

Loop::~Loop() {
  Stop();
  Discard();
}

void Loop::Start() {
  thread_ = std::thread([ioc = ioc_.get()] {
    // Keeps run() going while there is nothing to do; Stop ends it.
    auto work = asio::make_work_guard(*ioc);
    ioc->run();
  });
}

void Loop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }
  if (ioc_ != nullptr) ioc_->stop();
  if (thread_.joinable()) thread_.join();
}

void Loop::Discard() {
  std::vector<std::shared_ptr<WsSession>> ready;
  {
    absl::MutexLock lock(&mu_);
    ready.swap(ready_);
  }
  running_.clear();
  ready.clear();
  ioc_.reset();
}

void Loop::MarkReady(const std::weak_ptr<WsSession>& session) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  // Locked here, not by the caller: a reference taken on the hub's thread and dropped
  // there after Discard would destroy the session's sockets after their io_context.
  std::shared_ptr<WsSession> s = session.lock();
  if (s == nullptr) return;
  ready_.push_back(std::move(s));
  // Posted under the lock, which Stop takes too: the io_context is never posted to once
  // Discard may destroy it. Posting only queues the handler.
  if (ready_.size() == 1) asio::post(*ioc_, [this] { RunReady(); });
}

void Loop::RunReady() {
  {
    absl::MutexLock lock(&mu_);
    running_.swap(ready_);
  }
  RunRound(running_, kKeptReady,
           [](const std::shared_ptr<WsSession>& session) { session->OnHubReady(); });
}

}  // namespace bridge::ws
