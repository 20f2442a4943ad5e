#include "bridge/redis/resp_connection.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/redis/resp_harness.h"
#include "tests/support/redis_server.h"

namespace bridge::redis {
namespace {

TEST(RespConnectionTest, CommandsRepliesAndErrorsInOrder) {
  testing::RedisServer server;
  Harness h;
  h.Open(OptionsFor(server.port()));
  ASSERT_TRUE(h.WaitReady());

  std::optional<Copy> set = h.Command({"SET", "k", std::string("v\0w", 3)});
  ASSERT_TRUE(set.has_value());
  EXPECT_EQ(set->type, REDIS_REPLY_STATUS);
  EXPECT_EQ(set->str, "OK");
  std::optional<Copy> get = h.Command({"GET", "k"});
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->str, std::string("v\0w", 3));
  std::optional<Copy> bad = h.Command({"NO-SUCH-COMMAND"});
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->type, REDIS_REPLY_ERROR);

  // Many commands in one write: each reply reaches its own command, in order.
  std::vector<std::vector<std::string>> incrs(500, {"INCR", "counter"});
  std::vector<Copy> replies = h.Pipeline(incrs);
  ASSERT_EQ(replies.size(), 500u);
  for (size_t i = 0; i < replies.size(); ++i) EXPECT_EQ(replies[i].integer, (long long)i + 1);
}

TEST(RespConnectionTest, ShardedPubSubRepliesAndPushes) {
  testing::RedisServer server;
  Harness h;
  h.Open(OptionsFor(server.port()));
  ASSERT_TRUE(h.WaitReady());

  std::optional<Copy> sub = h.Command({"SSUBSCRIBE", "orders.1"});
  ASSERT_TRUE(sub.has_value());
  ASSERT_EQ(sub->elements.size(), 3u);
  EXPECT_EQ(sub->elements[0].str, "ssubscribe");
  EXPECT_EQ(sub->elements[1].str, "orders.1");
  std::optional<Copy> classic = h.Command({"SUBSCRIBE", "news"});
  ASSERT_TRUE(classic.has_value());
  EXPECT_EQ(classic->elements[0].str, "subscribe");

  ASSERT_TRUE(server.Command({"SPUBLISH", "orders.1", "first"}).ok());
  ASSERT_TRUE(server.Command({"PUBLISH", "news", "second"}).ok());
  std::vector<Copy> pushes = h.WaitPushes(2);
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0].elements[0].str, "smessage");
  EXPECT_EQ(pushes[0].elements[1].str, "orders.1");
  EXPECT_EQ(pushes[0].elements[2].str, "first");
  EXPECT_EQ(pushes[1].elements[0].str, "message");
  EXPECT_EQ(pushes[1].elements[2].str, "second");

  // In subscribe mode PING answers with an array; it is still the reply.
  std::optional<Copy> ping = h.Command({"PING"});
  ASSERT_TRUE(ping.has_value());
  EXPECT_EQ(ping->elements[0].str, "pong");

  std::optional<Copy> unsub = h.Command({"SUNSUBSCRIBE", "orders.1"});
  ASSERT_TRUE(unsub.has_value());
  EXPECT_EQ(unsub->elements[0].str, "sunsubscribe");
  EXPECT_EQ(unsub->elements[1].str, "orders.1");
  // An unsubscribe-all names several channels: the first confirmation answers it, the
  // others arrive as pushes.
  ASSERT_TRUE(h.Command({"SSUBSCRIBE", "a"}).has_value());
  ASSERT_TRUE(h.Command({"SSUBSCRIBE", "b"}).has_value());
  std::optional<Copy> all = h.Command({"SUNSUBSCRIBE"});
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->elements[0].str, "sunsubscribe");
  pushes = h.WaitPushes(3);
  ASSERT_EQ(pushes.size(), 3u);
  EXPECT_EQ(pushes[2].elements[0].str, "sunsubscribe");
  EXPECT_EQ(server.Command({"PUBSUB", "SHARDNUMSUB", "orders.1"}).value(), "orders.1\n0");
}

TEST(RespConnectionTest, AuthenticatesOrSaysWhy) {
  testing::RedisServer server({"requirepass s3cret"});
  {
    Harness h;
    RespConnectionOptions options = OptionsFor(server.port());
    options.password = "s3cret";
    h.Open(options);
    ASSERT_TRUE(h.WaitReady());
    EXPECT_EQ(h.Command({"PING"})->str, "PONG");
  }
  {
    Harness h;
    RespConnectionOptions options = OptionsFor(server.port());
    options.password = "wrong";
    h.Open(options);
    std::optional<absl::Status> closed = h.WaitClosed();
    ASSERT_TRUE(closed.has_value());
    EXPECT_EQ(closed->code(), absl::StatusCode::kUnauthenticated) << *closed;
  }
  {
    Harness h;
    h.Open(OptionsFor(server.port()));
    std::optional<absl::Status> closed = h.WaitClosed();
    ASSERT_TRUE(closed.has_value());
    EXPECT_EQ(closed->code(), absl::StatusCode::kUnauthenticated) << *closed;
  }
}

TEST(RespConnectionTest, ConnectTimesOutOnAPeerThatNeverAnswers) {
  // A listening socket nobody accepts from: the kernel completes the TCP handshake, and
  // PING is never answered.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  {
    Harness h;
    RespConnectionOptions options = OptionsFor(ntohs(addr.sin_port));
    options.connect_timeout = absl::Milliseconds(200);
    h.Open(options);
    std::optional<absl::Status> closed = h.WaitClosed();
    ASSERT_TRUE(closed.has_value());
    EXPECT_EQ(closed->code(), absl::StatusCode::kDeadlineExceeded) << *closed;
  }
  ::close(fd);
}

TEST(RespConnectionTest, ReportsTheLossOnceAndAnswersWaitingCommands) {
  testing::RedisServer server;
  Harness h;
  h.Open(OptionsFor(server.port()));
  ASSERT_TRUE(h.WaitReady());
  // BLPOP holds its reply until the server dies.
  auto done = std::make_shared<absl::Notification>();
  std::thread blocked([&] {
    std::optional<Copy> reply = h.Command({"BLPOP", "nothing", "0"});
    EXPECT_FALSE(reply.has_value());
    done->Notify();
  });
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto clients = server.Command({"CLIENT", "LIST"});
        return clients.ok() && clients->find("cmd=blpop") != std::string::npos;
      },
      kWait));
  server.Kill();
  std::optional<absl::Status> closed = h.WaitClosed();
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->code(), absl::StatusCode::kUnavailable) << *closed;
  EXPECT_TRUE(done->WaitForNotificationWithTimeout(kWait));
  blocked.join();
  // After the end, commands get null.
  EXPECT_FALSE(h.Command({"PING"}).has_value());
}

}  // namespace
}  // namespace bridge::redis
