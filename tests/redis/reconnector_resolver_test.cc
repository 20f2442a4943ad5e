// A Reconnector whose address comes from a MasterResolver (as with Sentinel), against real
// redis-servers and a resolver the test moves by hand.
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
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "bridge/redis/master_resolver.h"
#include "bridge/redis/reconnector.h"
#include "bridge/redis/redis_url.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"

namespace bridge::redis {
namespace {

using ::bridge::testing::RedisServer;
using ::bridge::testing::WaitFor;

constexpr absl::Duration kWait = absl::Seconds(10);

// Names whatever master the test says; Move() retargets the reconnector as a resolver
// does when the master changes. Strand only, but for failures().
class FakeResolver : public MasterResolver {
 public:
  absl::StatusOr<RedisUrl> Master() override {
    if (!master_.has_value()) return absl::UnavailableError("no master yet");
    return *master_;
  }
  void MasterFailed(const RedisUrl&, const absl::Status& why) override {
    absl::MutexLock lock(&mu_);
    failures_.push_back(why);
  }
  void Watch(std::weak_ptr<Reconnector> reconnector) override { watched_ = std::move(reconnector); }

  void Move(const RedisServer& server) {
    absl::StatusOr<RedisUrl> url = RedisUrl::Parse(server.url());
    master_ = *url;
    if (std::shared_ptr<Reconnector> r = watched_.lock()) r->Retarget();
  }
  std::vector<absl::Status> failures() {
    absl::MutexLock lock(&mu_);
    return failures_;
  }

 private:
  std::optional<RedisUrl> master_;
  std::weak_ptr<Reconnector> watched_;
  absl::Mutex mu_;
  std::vector<absl::Status> failures_ ABSL_GUARDED_BY(mu_);
};

class ReconnectorResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (reconnector_) OnStrand([&] { reconnector_->Stop(); });
    reconnector_.reset();
    work_.reset();
    thread_.join();
  }

  // With a resolver, or without one (then to `url`).
  void Start(std::shared_ptr<MasterResolver> resolver, const std::string& url = "redis://x:1") {
    RedisUpstreamOptions options;
    options.connect_timeout = absl::Seconds(2);
    options.backoff_initial = absl::Milliseconds(10);
    options.backoff_max = absl::Milliseconds(200);
    reconnector_ = std::make_shared<Reconnector>("test", strand_, *RedisUrl::Parse(url), options,
                                                 std::move(resolver));
    OnStrand([&] {
      reconnector_->Start(
          [this] {
            absl::MutexLock lock(&mu_);
            ++ready_;
          },
          [this](const absl::Status& status) {
            absl::MutexLock lock(&mu_);
            lost_.push_back(status);
          });
    });
  }

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
  int ready() {
    absl::MutexLock lock(&mu_);
    return ready_;
  }
  std::vector<absl::Status> lost() {
    absl::MutexLock lock(&mu_);
    return lost_;
  }

  // Clients of `server` other than the one asking.
  static int OtherClients(const RedisServer& server) {
    absl::StatusOr<std::string> list = server.Command({"CLIENT", "LIST"});
    if (!list.ok()) return -1;
    return static_cast<int>(
               std::vector<std::string>(absl::StrSplit(*list, '\n', absl::SkipEmpty())).size()) -
           1;
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  Strand strand_ = boost::asio::make_strand(io_);
  std::thread thread_;
  std::shared_ptr<Reconnector> reconnector_;

  absl::Mutex mu_;
  int ready_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::Status> lost_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ReconnectorResolverTest, WaitsForAMasterWithoutFailingThenConnectsWhenTold) {
  RedisServer a;
  auto resolver = std::make_shared<FakeResolver>();
  Start(resolver);
  EXPECT_EQ(ready(), 0);
  OnStrand([&] { resolver->Move(a); });
  ASSERT_TRUE(AwaitReady(1));
  // Waiting for a master is no failed attempt.
  EXPECT_EQ(reconnector_->Stats().connect_failures, 0u);
  EXPECT_TRUE(resolver->failures().empty());
}

TEST_F(ReconnectorResolverTest, RetargetMovesTheReadyConnectionAtOnce) {
  RedisServer a;
  RedisServer b;
  auto resolver = std::make_shared<FakeResolver>();
  Start(resolver);
  OnStrand([&] { resolver->Move(a); });
  ASSERT_TRUE(AwaitReady(1));
  EXPECT_EQ(OtherClients(a), 1);

  // The same master again: the connection stays.
  OnStrand([&] { resolver->Move(a); });
  EXPECT_TRUE(lost().empty());

  // Another: the owner hears of a loss (synchronously, within Retarget), then a ready
  // connection to the new master.
  OnStrand([&] { resolver->Move(b); });
  ASSERT_EQ(lost().size(), 1u);
  EXPECT_EQ(lost()[0].code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(lost()[0].message(), "the master moved to 127.0.0.1:"))
      << lost()[0];
  ASSERT_TRUE(AwaitReady(2));
  EXPECT_EQ(OtherClients(b), 1);
  EXPECT_TRUE(WaitFor([&] { return OtherClients(a) == 0; }));
  // A move is no failure of the old master's, nor of the new one's.
  EXPECT_TRUE(resolver->failures().empty());
  EXPECT_EQ(reconnector_->Stats().connect_failures, 0u);
}

TEST_F(ReconnectorResolverTest, AReplicaFailsTheAttemptByRoleAndIsReported) {
  RedisServer master;
  RedisServer replica({absl::StrCat("replicaof 127.0.0.1 ", master.port())});
  auto resolver = std::make_shared<FakeResolver>();
  Start(resolver);
  OnStrand([&] { resolver->Move(replica); });
  ASSERT_TRUE(WaitFor([&] { return resolver->failures().size() >= 2; }));
  const absl::Status failure = resolver->failures()[0];
  EXPECT_EQ(failure.code(), absl::StatusCode::kFailedPrecondition) << failure;
  EXPECT_TRUE(absl::StrContains(failure.message(), "ROLE: the node is a replica")) << failure;
  EXPECT_EQ(ready(), 0);

  OnStrand([&] { resolver->Move(master); });
  ASSERT_TRUE(AwaitReady(1));
}

// Without a resolver nothing changed: the URL's address, and no ROLE in the handshake
// (a replica is a fine server to subscribe to when the operator names it).
TEST_F(ReconnectorResolverTest, WithoutAResolverAReplicaIsUsedAsNamed) {
  RedisServer master;
  RedisServer replica({absl::StrCat("replicaof 127.0.0.1 ", master.port())});
  Start(nullptr, replica.url());
  ASSERT_TRUE(AwaitReady(1));
  EXPECT_EQ(reconnector_->Stats().connect_failures, 0u);
}

}  // namespace
}  // namespace bridge::redis
