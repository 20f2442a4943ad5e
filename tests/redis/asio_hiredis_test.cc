#include "bridge/redis/asio_hiredis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"

namespace bridge::redis {
namespace {

// What one context's callbacks saw, as "kind name" lines.
struct Seen {
  absl::Mutex mu;
  std::vector<std::string> replies ABSL_GUARDED_BY(mu);
  bool disconnected ABSL_GUARDED_BY(mu) = false;
};

void OnReply(redisAsyncContext* /*context*/, void* reply, void* privdata) {
  auto* seen = static_cast<Seen*>(privdata);
  auto* r = static_cast<redisReply*>(reply);
  absl::MutexLock lock(&seen->mu);
  if (r == nullptr) {
    seen->replies.push_back("null");
  } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
    seen->replies.push_back(std::string(r->element[0]->str) + " " +
                            std::string(r->element[1]->str, r->element[1]->len));
  } else if (r->type == REDIS_REPLY_STATUS) {
    seen->replies.push_back(std::string(r->str, r->len));
  } else {
    seen->replies.push_back("type " + std::to_string(r->type));
  }
}

void OnDisconnect(const redisAsyncContext* context, int /*status*/) {
  auto* seen = static_cast<Seen*>(context->data);
  absl::MutexLock lock(&seen->mu);
  seen->disconnected = true;
}

class AsioHiredisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    work_.reset();
    thread_.join();
  }
  // Runs `f` on the strand and waits for it.
  template <typename F>
  void OnStrand(F f) {
    absl::Notification done;
    boost::asio::post(strand_, [&] {
      f();
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  Strand strand_ = boost::asio::make_strand(io_);
  std::thread thread_;
};

TEST_F(AsioHiredisTest, RefusesAContextAlreadyAttached) {
  testing::RedisServer server;
  OnStrand([&] {
    redisAsyncContext* context = redisAsyncConnect("127.0.0.1", server.port());
    ASSERT_NE(context, nullptr);
    ASSERT_EQ(context->err, 0);
    EXPECT_TRUE(AsioHiredis::Attach(context, strand_).ok());
    EXPECT_EQ(AsioHiredis::Attach(context, strand_).code(), absl::StatusCode::kFailedPrecondition);
    redisAsyncFree(context);
  });
}

// hiredis 0.14.1 keeps one callback per channel and counts pending subscribes, so a
// pipelined SUBSCRIBE a, UNSUBSCRIBE a, SUBSCRIBE a keeps the callback and a message on
// `a` still reaches it; freeing the context then calls it once more with a null reply.
TEST_F(AsioHiredisTest, PipelinedSubscribeUnsubscribeSubscribeKeepsTheCallback) {
  testing::RedisServer server;
  Seen seen;
  redisAsyncContext* context = nullptr;
  OnStrand([&] {
    context = redisAsyncConnect("127.0.0.1", server.port());
    ASSERT_NE(context, nullptr);
    ASSERT_TRUE(AsioHiredis::Attach(context, strand_).ok());
    context->data = &seen;
    redisAsyncSetDisconnectCallback(context, &OnDisconnect);
    redisAsyncCommand(context, &OnReply, &seen, "SUBSCRIBE a");
    redisAsyncCommand(context, &OnReply, &seen, "UNSUBSCRIBE a");
    redisAsyncCommand(context, &OnReply, &seen, "SUBSCRIBE a");
  });
  ASSERT_TRUE(testing::WaitFor([&] { return server.NumSub("a") == 1; }));
  {
    absl::MutexLock lock(&seen.mu);
    auto three = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(seen.mu) { return seen.replies.size() >= 3; };
    ASSERT_TRUE(seen.mu.AwaitWithTimeout(absl::Condition(&three), absl::Seconds(10)));
  }
  EXPECT_EQ(server.Publish("a", "m"), 1);
  {
    absl::MutexLock lock(&seen.mu);
    auto four = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(seen.mu) { return seen.replies.size() >= 4; };
    ASSERT_TRUE(seen.mu.AwaitWithTimeout(absl::Condition(&four), absl::Seconds(10)));
    EXPECT_EQ(seen.replies, (std::vector<std::string>{"subscribe a", "unsubscribe a", "subscribe a",
                                                      "message a"}));
  }
  OnStrand([&] { redisAsyncDisconnect(context); });
  absl::MutexLock lock(&seen.mu);
  EXPECT_TRUE(seen.disconnected);
  EXPECT_EQ(seen.replies.back(), "null");
}

// The peer going away frees the context from inside the adapter's read handler.
TEST_F(AsioHiredisTest, SurvivesThePeerClosing) {
  testing::RedisServer server;
  Seen seen;
  OnStrand([&] {
    redisAsyncContext* context = redisAsyncConnect("127.0.0.1", server.port());
    ASSERT_NE(context, nullptr);
    ASSERT_TRUE(AsioHiredis::Attach(context, strand_).ok());
    context->data = &seen;
    redisAsyncSetDisconnectCallback(context, &OnDisconnect);
    redisAsyncCommand(context, &OnReply, &seen, "PING");
  });
  {
    absl::MutexLock lock(&seen.mu);
    auto one = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(seen.mu) { return !seen.replies.empty(); };
    ASSERT_TRUE(seen.mu.AwaitWithTimeout(absl::Condition(&one), absl::Seconds(10)));
    EXPECT_EQ(seen.replies[0], "PONG");
  }
  server.Kill();
  absl::MutexLock lock(&seen.mu);
  auto gone = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(seen.mu) { return seen.disconnected; };
  EXPECT_TRUE(seen.mu.AwaitWithTimeout(absl::Condition(&gone), absl::Seconds(10)));
}

}  // namespace
}  // namespace bridge::redis
