#ifndef BRIDGE_TESTS_REDIS_RESP_HARNESS_H_
#define BRIDGE_TESTS_REDIS_RESP_HARNESS_H_

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "bridge/redis/resp_connection.h"
#include "gtest/gtest.h"

namespace bridge::redis {

inline constexpr absl::Duration kWait = absl::Seconds(10);

// A reply copied out of its callback: hiredis frees it afterwards.
struct Copy {
  int type = 0;
  std::string str;
  long long integer = 0;
  std::vector<Copy> elements;

  static Copy Of(const redisReply& r) {
    Copy c;
    c.type = r.type;
    c.integer = r.integer;
    if (r.str != nullptr) c.str.assign(r.str, r.len);
    for (size_t i = 0; i < r.elements; ++i) c.elements.push_back(Of(*r.element[i]));
    return c;
  }
};

// An io_context on a thread of its own, and one connection on a strand of it, whose
// events the test thread waits for.
class Harness {
 public:
  Harness() : work_(boost::asio::make_work_guard(io_)), strand_(boost::asio::make_strand(io_)) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Harness() {
    absl::Notification closed;
    boost::asio::post(strand_, [&] {
      if (connection_ != nullptr) connection_->Close();
      connection_.reset();
      closed.Notify();
    });
    closed.WaitForNotification();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  void Open(RespConnectionOptions options) {
    boost::asio::post(strand_, [this, options] {
      connection_ = std::make_shared<RespConnection>(strand_, options);
      connection_->Open([this] { ready_.Notify(); },
                        [this](absl::Status status) {
                          absl::MutexLock lock(&mu_);
                          closed_ = std::move(status);
                        },
                        [this](const redisReply& push) {
                          absl::MutexLock lock(&mu_);
                          pushes_.push_back(Copy::Of(push));
                        });
    });
  }

  bool WaitReady() { return ready_.WaitForNotificationWithTimeout(kWait); }

  // The reply to one command; nullopt for a null reply (the connection ended).
  std::optional<Copy> Command(std::vector<std::string> argv) {
    auto done = std::make_shared<absl::Notification>();
    auto out = std::make_shared<std::optional<Copy>>();
    boost::asio::post(strand_, [this, argv = std::move(argv), done, out]() mutable {
      connection_->Command(std::move(argv), [done, out](const redisReply* reply) {
        if (reply != nullptr) *out = Copy::Of(*reply);
        done->Notify();
      });
    });
    EXPECT_TRUE(done->WaitForNotificationWithTimeout(kWait));
    return *out;
  }

  // Sends every command at once and returns the replies in the order they came.
  std::vector<Copy> Pipeline(std::vector<std::vector<std::string>> commands) {
    auto done = std::make_shared<absl::Notification>();
    auto out = std::make_shared<std::vector<Copy>>();
    const size_t n = commands.size();
    boost::asio::post(strand_, [this, commands = std::move(commands), done, out, n] {
      for (const auto& argv : commands) {
        connection_->Command(argv, [done, out, n](const redisReply* reply) {
          if (reply != nullptr) out->push_back(Copy::Of(*reply));
          if ((reply == nullptr || out->size() == n) && !done->HasBeenNotified()) done->Notify();
        });
      }
    });
    EXPECT_TRUE(done->WaitForNotificationWithTimeout(kWait));
    return *out;
  }

  std::optional<absl::Status> WaitClosed() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](std::optional<absl::Status>* s) { return s->has_value(); }, &closed_),
        kWait);
    return closed_;
  }

  std::vector<Copy> WaitPushes(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pushes_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return pushes_;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  Strand strand_;
  std::thread thread_;
  std::shared_ptr<RespConnection> connection_;
  absl::Notification ready_;
  absl::Mutex mu_;
  std::optional<absl::Status> closed_ ABSL_GUARDED_BY(mu_);
  std::vector<Copy> pushes_ ABSL_GUARDED_BY(mu_);
};

inline RespConnectionOptions OptionsFor(int port) {
  RespConnectionOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  options.connect_timeout = absl::Seconds(5);
  return options;
}

}  // namespace bridge::redis

#endif  // BRIDGE_TESTS_REDIS_RESP_HARNESS_H_
