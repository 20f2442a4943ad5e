#include "bridge/redis/reconnector.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "bridge/redis/redis_url.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"

namespace bridge::redis {
namespace {

using ::bridge::testing::FreePort;
using ::bridge::testing::RedisServer;
using ::bridge::testing::WaitFor;

constexpr absl::Duration kWait = absl::Seconds(10);

// A Reconnector on a strand of its own io_context, with its handlers' calls recorded.
class ReconnectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  void TearDown() override {
    if (reconnector_) OnStrand([&] { reconnector_->Stop(); });
    reconnector_.reset();
    work_.reset();
    for (std::thread& t : threads_) t.join();
  }

  // With `stop_on_lost`, the lost handler stops the reconnector, then reads its own
  // capture, which is large enough to live on the heap (so ASan sees a handler freed
  // while it runs).
  void Start(const std::string& url, bool stop_on_lost = false) {
    absl::StatusOr<RedisUrl> parsed = RedisUrl::Parse(url);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    RedisUpstreamOptions options;
    options.connect_timeout = absl::Seconds(2);
    options.backoff_initial = absl::Milliseconds(10);
    options.backoff_max = absl::Milliseconds(80);
    reconnector_ = std::make_shared<Reconnector>("test", strand_, *std::move(parsed), options);
    OnStrand([&] {
      reconnector_->Start(
          [this] {
            absl::MutexLock lock(&mu_);
            ++ready_;
          },
          [this, stop_on_lost, note = std::string(200, 'x')](const absl::Status& status) {
            if (stop_on_lost) reconnector_->Stop();
            absl::MutexLock lock(&mu_);
            lost_.push_back(stop_on_lost ? absl::Status(status.code(), note) : status);
          });
    });
  }

  // Runs `f` on the strand, as the Reconnector's owner does, and waits for it.
  template <typename F>
  void OnStrand(F f) {
    absl::Notification done;
    boost::asio::post(strand_, [&] {
      f();
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  }

  bool AwaitReady(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ready_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
  }
  std::optional<absl::Status> AwaitLost(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return lost_.size() >= n; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&enough), kWait)) return std::nullopt;
    return lost_[n - 1];
  }
  int ready() {
    absl::MutexLock lock(&mu_);
    return ready_;
  }
  size_t lost_count() {
    absl::MutexLock lock(&mu_);
    return lost_.size();
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  Strand strand_ = boost::asio::make_strand(io_);
  std::vector<std::thread> threads_;
  std::shared_ptr<Reconnector> reconnector_;

  absl::Mutex mu_;
  int ready_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::Status> lost_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ReconnectorTest, ReadyLostAndReadyAgainAfterRedisRestarts) {
  RedisServer server;
  Start(server.url());
  ASSERT_TRUE(AwaitReady(1));
  EXPECT_TRUE(reconnector_->Stats().connected);
  bool has_context = false;
  OnStrand([&] { has_context = reconnector_->ready() && reconnector_->context() != nullptr; });
  EXPECT_TRUE(has_context);

  server.Kill();
  std::optional<absl::Status> lost = AwaitLost(1);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->code(), absl::StatusCode::kUnavailable) << *lost;
  server.Start();
  ASSERT_TRUE(AwaitReady(2));
  const ReconnectorStats stats = reconnector_->Stats();
  EXPECT_TRUE(stats.connected);
  EXPECT_EQ(stats.disconnects, 1u);
  EXPECT_FALSE(stats.last_error.empty());
  EXPECT_EQ(lost_count(), 1u);
}

TEST_F(ReconnectorTest, DropLosesTheReadyConnectionWithItsStatusAndReconnects) {
  RedisServer server;
  Start(server.url());
  ASSERT_TRUE(AwaitReady(1));
  OnStrand([&] { reconnector_->Drop(absl::DeadlineExceededError("stalled: test")); });
  std::optional<absl::Status> lost = AwaitLost(1);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(*lost, absl::DeadlineExceededError("stalled: test"));
  ASSERT_TRUE(AwaitReady(2));
  const ReconnectorStats stats = reconnector_->Stats();
  EXPECT_EQ(stats.disconnects, 1u);
  EXPECT_EQ(stats.last_error, "DEADLINE_EXCEEDED: stalled: test");
}

TEST_F(ReconnectorTest, FailedAttemptsBackOffUpToTheMaximumAndNeverReport) {
  Start("redis://127.0.0.1:" + std::to_string(FreePort()));
  // 10 ms doubling to the 80 ms maximum: the fourth failure reaches it.
  ASSERT_TRUE(WaitFor([&] { return reconnector_->Stats().connect_failures >= 5; }, kWait));
  const ReconnectorStats stats = reconnector_->Stats();
  EXPECT_EQ(stats.retry_ceiling, absl::Milliseconds(80));
  EXPECT_FALSE(stats.connected);
  EXPECT_EQ(stats.disconnects, 0u);
  EXPECT_TRUE(absl::StrContains(stats.last_error, "UNAVAILABLE")) << stats.last_error;
  EXPECT_EQ(ready(), 0);
  EXPECT_EQ(lost_count(), 0u);
}

TEST_F(ReconnectorTest, StopClosesAndNothingIsReportedAfter) {
  RedisServer server;
  Start(server.url());
  ASSERT_TRUE(AwaitReady(1));
  OnStrand([&] { reconnector_->Stop(); });
  EXPECT_FALSE(reconnector_->Stats().connected);
  // Redis sees the connection go.
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::string> clients = server.Command({"CLIENT", "LIST"});
        // Only the connection asking.
        return clients.ok() && absl::StrContains(*clients, " addr=") &&
               clients->find(" addr=") == clients->rfind(" addr=");
      },
      kWait));
  // A restart after Stop is not a loss, and no retry follows it.
  server.Restart();
  OnStrand([&] {
    reconnector_->Drop(absl::UnavailableError("after stop"));
    EXPECT_EQ(reconnector_->context(), nullptr);
  });
  EXPECT_EQ(lost_count(), 0u);
  EXPECT_EQ(ready(), 1);
  EXPECT_EQ(reconnector_->Stats().connect_failures, 0u);
}

TEST_F(ReconnectorTest, TheLostHandlerMayStopIt) {
  RedisServer server;
  Start(server.url(), /*stop_on_lost=*/true);
  ASSERT_TRUE(AwaitReady(1));
  server.Kill();
  std::optional<absl::Status> lost = AwaitLost(1);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->message(), std::string(200, 'x'));
  server.Start();
  // Stopped: no retry, so no attempt fails and none succeeds.
  OnStrand([&] { EXPECT_EQ(reconnector_->context(), nullptr); });
  EXPECT_EQ(ready(), 1);
  EXPECT_EQ(reconnector_->Stats().connect_failures, 0u);
}

}  // namespace
}  // namespace bridge::redis
