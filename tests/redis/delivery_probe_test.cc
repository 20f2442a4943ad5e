// DeliveryProbe alone, wired to a fake publish and drop instead of Redis: what a
// connection that owns one (a Cluster shard's, say) can count on.
#include "bridge/redis/delivery_probe.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"

namespace bridge::redis {
namespace {

using ::bridge::testing::WaitFor;

constexpr absl::Duration kInterval = absl::Milliseconds(20);
constexpr absl::Duration kTimeout = absl::Milliseconds(300);

// What the fake Redis does with a probe's publish.
enum class Redis {
  kDelivers,  // answers it, and delivers it to the connection
  kHangs,     // never answers, never delivers
  kSwallows,  // answers it, never delivers (a subscription on another node)
  kIsDown,    // the publish connection is down: UNAVAILABLE at once
  kRefuses,   // an error reply (an ACL without the channel)
};

class DeliveryProbeTest : public ::testing::Test {
 protected:
  DeliveryProbeTest() : strand_(boost::asio::make_strand(io_)) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~DeliveryProbeTest() override {
    if (probe_) OnStrand([this] { probe_->Stop(); });
    work_.reset();
    thread_.join();
    // Its timers go before the io_context they belong to.
    hung_.clear();
    probe_.reset();
  }

  void Create(Redis redis, absl::Duration interval = kInterval) {
    SetRedis(redis);
    probe_ = std::make_shared<DeliveryProbe>(
        strand_, NewProbeChannel(), DeliveryProbeOptions{.interval = interval, .timeout = kTimeout},
        [this](std::string channel, std::string payload, DeliveryProbe::DoneCallback done) {
          Publish(std::move(channel), std::move(payload), std::move(done));
        },
        [this](absl::Status why) {
          absl::MutexLock lock(&mu_);
          drops_.push_back(std::move(why));
        });
  }

  // Runs `f` on the probe's strand and waits for it.
  template <typename F>
  void OnStrand(F f) {
    absl::Notification done;
    boost::asio::post(strand_, [&] {
      f();
      done.Notify();
    });
    done.WaitForNotification();
  }

  void SetRedis(Redis redis) {
    absl::MutexLock lock(&mu_);
    redis_ = redis;
  }
  int publishes() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(payloads_.size());
  }
  std::vector<absl::Status> drops() const {
    absl::MutexLock lock(&mu_);
    return drops_;
  }

  std::shared_ptr<DeliveryProbe> probe_;

 private:
  // Called on the strand, from the probe.
  void Publish(std::string channel, std::string payload, DeliveryProbe::DoneCallback done) {
    Redis redis;
    {
      absl::MutexLock lock(&mu_);
      redis = redis_;
      payloads_.push_back(payload);
    }
    EXPECT_EQ(channel, probe_->channel());
    switch (redis) {
      case Redis::kDelivers:
        // Later, as Redis' reply and the message would come.
        boost::asio::post(strand_, [this, payload, done = std::move(done)]() mutable {
          done(absl::OkStatus());
          probe_->OnMessage(payload);
        });
        break;
      case Redis::kHangs:
        hung_.push_back(std::move(done));
        break;
      case Redis::kSwallows:
        done(absl::OkStatus());
        break;
      case Redis::kIsDown:
        done(absl::UnavailableError("redis publish connection is down"));
        break;
      case Redis::kRefuses:
        done(absl::InternalError("redis PUBLISH: NOPERM"));
        break;
    }
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  Strand strand_;
  std::thread thread_;
  // Strand only: answers never given, as a hung Redis never gives them.
  std::vector<DeliveryProbe::DoneCallback> hung_;
  mutable absl::Mutex mu_;
  Redis redis_ ABSL_GUARDED_BY(mu_) = Redis::kDelivers;
  std::vector<std::string> payloads_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> drops_ ABSL_GUARDED_BY(mu_);
};

TEST(ProbeChannelTest, IsPrivateAndNewEachTime) {
  const std::string a = NewProbeChannel();
  EXPECT_TRUE(IsProbeChannel(a)) << a;
  EXPECT_EQ(a.size(), kProbeChannelPrefix.size() + 32);
  EXPECT_NE(a, NewProbeChannel());
  EXPECT_TRUE(absl::EndsWith(NewProbeChannel("{shard-7}"), "{shard-7}"));
  EXPECT_FALSE(IsProbeChannel("news"));
  EXPECT_FALSE(IsProbeChannel("__bridge_probe"));
}

TEST_F(DeliveryProbeTest, ProbesThatComeBackRecordTheirRoundTrip) {
  Create(Redis::kDelivers);
  EXPECT_EQ(probe_->Stats().last_round_trip, absl::InfiniteDuration());
  OnStrand([this] { probe_->Start(); });
  ASSERT_TRUE(WaitFor([&] { return probe_->Stats().sent >= 5; }));
  const DeliveryProbeStats stats = probe_->Stats();
  EXPECT_LT(stats.last_round_trip, kTimeout);
  EXPECT_EQ(stats.lost, 0u);
  EXPECT_TRUE(drops().empty());
}

// A Redis that stops answering: the probe is lost one timeout after it went, the owner is
// asked to drop the connection, once, and no probe goes until the next Start.
TEST_F(DeliveryProbeTest, AProbeLostDropsTheConnectionOnce) {
  Create(Redis::kDelivers);
  OnStrand([this] { probe_->Start(); });
  ASSERT_TRUE(WaitFor([&] { return probe_->Stats().sent >= 2; }));
  SetRedis(Redis::kHangs);
  const absl::Time hung = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return !drops().empty(); }));
  EXPECT_LE(absl::Now() - hung, kInterval + kTimeout + absl::Milliseconds(500));
  EXPECT_EQ(drops()[0].code(), absl::StatusCode::kDeadlineExceeded) << drops()[0];
  EXPECT_EQ(probe_->Stats().lost, 1u);
  const int sent = publishes();
  // The owner's connection is gone until it calls Start again: nothing more goes.
  EXPECT_FALSE(WaitFor([&] { return publishes() > sent || drops().size() > 1; },
                       2 * (kInterval + kTimeout)));
  // A new connection, and a Redis that delivers again.
  SetRedis(Redis::kDelivers);
  OnStrand([this] { probe_->Start(); });
  ASSERT_TRUE(WaitFor([&] { return publishes() >= sent + 3; }));
  EXPECT_EQ(probe_->Stats().lost, 1u);
  EXPECT_EQ(drops().size(), 1u);
}

// Published, answered, never delivered (the subscription is not where the publish went).
TEST_F(DeliveryProbeTest, AProbeAnsweredButNotDeliveredIsLost) {
  Create(Redis::kSwallows);
  OnStrand([this] { probe_->Start(); });
  ASSERT_TRUE(WaitFor([&] { return !drops().empty(); }));
  EXPECT_EQ(probe_->Stats().lost, 1u);
}

// Only the payload awaited counts: an earlier round's, or anything else, does not.
TEST_F(DeliveryProbeTest, OtherPayloadsDoNotAnswerTheProbe) {
  Create(Redis::kSwallows);
  OnStrand([this] { probe_->Start(); });
  ASSERT_TRUE(WaitFor([&] { return publishes() >= 1; }));
  OnStrand([this] {
    probe_->OnMessage("0");
    probe_->OnMessage("not a number");
    probe_->OnMessage("");
  });
  ASSERT_TRUE(WaitFor([&] { return !drops().empty(); }));
  EXPECT_EQ(probe_->Stats().lost, 1u);
}

// The publish connection down for part of a round: the probe is sent again, and a
// connection back before the timeout costs nothing.
TEST_F(DeliveryProbeTest, AProbeNotSentIsSentAgainWithinItsRound) {
  Create(Redis::kIsDown);
  OnStrand([this] { probe_->Start(); });
  ASSERT_TRUE(WaitFor([&] { return publishes() >= 2; }));
  SetRedis(Redis::kDelivers);
  ASSERT_TRUE(WaitFor([&] { return probe_->Stats().last_round_trip < kTimeout; }));
  EXPECT_TRUE(drops().empty());
  EXPECT_EQ(probe_->Stats().lost, 0u);
  // And one that stays down loses the round.
  SetRedis(Redis::kIsDown);
  ASSERT_TRUE(WaitFor([&] { return !drops().empty(); }));
  EXPECT_EQ(probe_->Stats().lost, 1u);
}

// Redis refuses the probe: no later probe can succeed, so it stops, without a drop.
TEST_F(DeliveryProbeTest, ARefusedProbeTurnsProbingOff) {
  Create(Redis::kRefuses);
  OnStrand([this] { probe_->Start(); });
  ASSERT_TRUE(WaitFor([&] { return publishes() >= 1; }));
  EXPECT_FALSE(
      WaitFor([&] { return publishes() > 1 || !drops().empty(); }, 2 * (kInterval + kTimeout)));
  bool enabled = true;
  OnStrand([&] {
    enabled = probe_->enabled();
    // A new connection does not start it again.
    probe_->Start();
  });
  EXPECT_FALSE(enabled);
  EXPECT_FALSE(WaitFor([&] { return publishes() > 1; }, 2 * kInterval));
  EXPECT_EQ(probe_->Stats().lost, 0u);
}

TEST_F(DeliveryProbeTest, ZeroIntervalIsOff) {
  Create(Redis::kDelivers, absl::ZeroDuration());
  EXPECT_FALSE(probe_->enabled());
  OnStrand([this] { probe_->Start(); });
  EXPECT_FALSE(WaitFor([&] { return publishes() > 0; }, 5 * kInterval));
}

}  // namespace
}  // namespace bridge::redis
