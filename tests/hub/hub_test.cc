#include "bridge/hub/hub.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <thread>
#include <utility>

#include "tests/hub/fake_upstream.h"

namespace bridge::hub {
namespace {

using ::testing::ElementsAre;

class HubTest : public ::testing::Test {
 protected:
  HubTest() : hub_(HubOptions{}, &upstream_) { upstream_.Connect(1); }

  // A subscriber of the live channel "a", its Subscribed taken.
  std::shared_ptr<Subscriber> LiveOnA(SubscriberOptions options) {
    auto s = NewSubscriber(options);
    EXPECT_TRUE(hub_.Subscribe(s, {"a"}, {}).ok());
    upstream_.ConfirmAll();
    Drain(s);
    return s;
  }

  std::shared_ptr<Subscriber> NewSubscriber(SubscriberOptions options = {}) {
    auto sink = std::make_shared<CountingSink>();
    sinks_.push_back(sink);
    auto s = hub_.Connect(sink, options);
    EXPECT_TRUE(s.ok());
    return *s;
  }

  // Every event the subscriber has, as short strings: "sub:a", "msg:a:1:payload",
  // "gap:a:slow_consumer:3".
  static std::vector<std::string> Drain(const std::shared_ptr<Subscriber>& s) {
    std::vector<std::string> out;
    Event e;
    while (s->Pop(&e) == Subscriber::PopResult::kEvent) {
      const std::string prefix = e.topic.is_pattern() ? "p:" : "";
      switch (e.type) {
        case Event::Type::kSubscribed:
          out.push_back("sub:" + prefix + e.topic.name);
          break;
        case Event::Type::kGap:
          out.push_back(absl::StrCat("gap:", prefix, e.topic.name, ":", e.reason, ":", e.dropped));
          break;
        case Event::Type::kRefused:
          out.push_back("refused:" + prefix + e.topic.name);
          break;
        case Event::Type::kMessage:
          out.push_back(absl::StrCat("msg:", e.message->channel(),
                                     e.message->pattern().empty() ? "" : "~" + e.message->pattern(),
                                     ":", e.message->seq(), ":", e.message->payload()));
          break;
      }
    }
    return out;
  }

  FakeUpstream upstream_;
  Hub hub_;
  std::vector<std::shared_ptr<CountingSink>> sinks_;
};

TEST_F(HubTest, OneUpstreamSubscriptionForManySubscribers) {
  std::vector<std::shared_ptr<Subscriber>> subs;
  for (int i = 0; i < 5; ++i) {
    subs.push_back(NewSubscriber());
    ASSERT_TRUE(hub_.Subscribe(subs.back(), {"a"}, {}).ok());
  }
  EXPECT_EQ(upstream_.subscribe_calls(), 1);
  upstream_.ConfirmAll();
  EXPECT_EQ(upstream_.held(Topic::Channel("a")), 1);
  // Subscribers that arrive once the channel is live are confirmed at once.
  subs.push_back(NewSubscriber());
  ASSERT_TRUE(hub_.Subscribe(subs.back(), {"a"}, {}).ok());
  EXPECT_EQ(upstream_.subscribe_calls(), 1);
  for (auto& s : subs) EXPECT_THAT(Drain(s), ElementsAre("sub:a"));

  for (size_t i = 0; i + 1 < subs.size(); ++i) hub_.Disconnect(subs[i]);
  EXPECT_EQ(upstream_.pending(), 0u) << "unsubscribed while a subscriber remains";
  hub_.Disconnect(subs.back());
  ASSERT_EQ(upstream_.pending(), 1u);
  EXPECT_FALSE(upstream_.orders()[0].subscribe);
  upstream_.ConfirmAll();
  EXPECT_EQ(upstream_.held(Topic::Channel("a")), 0);
  EXPECT_EQ(hub_.Stats().topics(), 0u);
}

TEST_F(HubTest, SubscribedOnlyAfterConfirmation) {
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {"a"}, {"news.*"}).ok());
  EXPECT_TRUE(Drain(s).empty());
  EXPECT_EQ(sinks_[0]->ready(), 0);
  upstream_.ConfirmOne();
  EXPECT_THAT(Drain(s), ElementsAre("sub:a"));
  upstream_.ConfirmOne();
  EXPECT_THAT(Drain(s), ElementsAre("sub:p:news.*"));
}

TEST_F(HubTest, JoinWhileUnsubscribeInFlightEndsSubscribed) {
  auto a = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(a, {"c"}, {}).ok());
  upstream_.ConfirmAll();
  hub_.Disconnect(a);  // UNSUBSCRIBE c in flight.
  auto b = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(b, {"c"}, {}).ok());
  // One order in flight per topic: the SUBSCRIBE waits for the UNSUBSCRIBE's reply.
  ASSERT_EQ(upstream_.pending(), 1u);
  // A message Redis still delivers before the UNSUBSCRIBE is not b's.
  upstream_.listener()->OnMessage(Topic::Channel("c"), "c", "old");
  upstream_.ConfirmOne();
  ASSERT_EQ(upstream_.pending(), 1u);
  EXPECT_TRUE(upstream_.orders()[0].subscribe);
  EXPECT_TRUE(Drain(b).empty());
  upstream_.ConfirmOne();
  upstream_.listener()->OnMessage(Topic::Channel("c"), "c", "new");
  EXPECT_THAT(Drain(b), ElementsAre("sub:c", "msg:c:1:new"));
  EXPECT_EQ(upstream_.held(Topic::Channel("c")), 1);
}

TEST_F(HubTest, LeaveWhileSubscribeInFlightEndsUnsubscribed) {
  auto a = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(a, {"c"}, {}).ok());
  hub_.Disconnect(a);
  upstream_.ConfirmAll();
  EXPECT_EQ(upstream_.held(Topic::Channel("c")), 0);
  EXPECT_EQ(hub_.Stats().topics(), 0u);
}

TEST_F(HubTest, FanOutSharesOneMessageInOrder) {
  std::vector<std::shared_ptr<Subscriber>> subs;
  for (int i = 0; i < 3; ++i) {
    subs.push_back(NewSubscriber());
    ASSERT_TRUE(hub_.Subscribe(subs.back(), {"a"}, {}).ok());
  }
  upstream_.ConfirmAll();
  for (auto& s : subs) Drain(s);
  for (int i = 1; i <= 100; ++i) {
    upstream_.listener()->OnMessage(Topic::Channel("a"), "a", std::to_string(i));
  }
  std::vector<const Message*> first;
  for (auto& s : subs) {
    Event e;
    for (uint64_t i = 1; i <= 100; ++i) {
      ASSERT_EQ(s->Pop(&e), Subscriber::PopResult::kEvent);
      ASSERT_EQ(e.message->seq(), i);
      ASSERT_EQ(e.message->payload(), std::to_string(i));
      if (i == 1) first.push_back(e.message.get());
    }
    EXPECT_EQ(s->Pop(&e), Subscriber::PopResult::kEmpty);
  }
  EXPECT_EQ(first[0], first[1]);
  EXPECT_EQ(first[1], first[2]);
  // One wake-up per subscriber for the burst, and one for the Subscribed before it.
  for (auto& sink : sinks_) EXPECT_EQ(sink->ready(), 2);
}

TEST_F(HubTest, PatternMessagesCarryThePattern) {
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {}, {"news.*"}).ok());
  upstream_.ConfirmAll();
  upstream_.listener()->OnMessage(Topic::Pattern("news.*"), "news.eu", "x");
  EXPECT_THAT(Drain(s), ElementsAre("sub:p:news.*", "msg:news.eu~news.*:1:x"));
}

TEST_F(HubTest, SlowConsumerDropsOldestAndReportsGap) {
  SubscriberOptions small;
  small.max_queued_messages = 10;
  auto slow = NewSubscriber(small);
  auto fast = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(slow, {"a"}, {}).ok());
  ASSERT_TRUE(hub_.Subscribe(fast, {"a"}, {}).ok());
  upstream_.ConfirmAll();
  for (int i = 1; i <= 25; ++i) {
    upstream_.listener()->OnMessage(Topic::Channel("a"), "a", "m");
  }
  std::vector<std::string> got = Drain(slow);
  ASSERT_EQ(got.size(), 12u);
  EXPECT_EQ(got[0], "sub:a");
  EXPECT_EQ(got[1], "gap:a:slow_consumer:15");
  EXPECT_EQ(got[2], "msg:a:16:m");
  EXPECT_EQ(got[11], "msg:a:25:m");
  EXPECT_EQ(Drain(fast).size(), 26u) << "the slow subscriber cost the fast one messages";
  // After catching up it gets everything again, with no further gap.
  upstream_.listener()->OnMessage(Topic::Channel("a"), "a", "m");
  EXPECT_THAT(Drain(slow), ElementsAre("msg:a:26:m"));
}

TEST_F(HubTest, ByteBoundHoldsAndOversizedMessageIsAGap) {
  SubscriberOptions small;
  small.max_queued_bytes = 100;
  auto s = LiveOnA(small);
  const std::string p40(39, 'x');  // 39 + 1 byte of channel name = 40.
  for (int i = 0; i < 3; ++i) upstream_.listener()->OnMessage(Topic::Channel("a"), "a", p40);
  upstream_.listener()->OnMessage(Topic::Channel("a"), "a", std::string(500, 'y'));
  // The third message evicts the first; the oversized fourth never fits and becomes a
  // gap in its own place, without evicting the others.
  std::vector<std::string> got = Drain(s);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], "gap:a:slow_consumer:1");
  EXPECT_EQ(got[1].substr(0, 8), "msg:a:2:");
  EXPECT_EQ(got[2].substr(0, 8), "msg:a:3:");
  EXPECT_EQ(got[3], "gap:a:slow_consumer:1");
}

TEST_F(HubTest, OversizedMessagesInARowAreOneGap) {
  SubscriberOptions small;
  small.max_queued_bytes = 100;
  auto s = LiveOnA(small);
  for (int i = 0; i < 1000; ++i) {
    upstream_.listener()->OnMessage(Topic::Channel("a"), "a", std::string(500, 'y'));
  }
  upstream_.listener()->OnMessage(Topic::Channel("a"), "a", "fits");
  EXPECT_THAT(Drain(s), ElementsAre("gap:a:slow_consumer:1000", "msg:a:1001:fits"));
}

TEST_F(HubTest, AskingAgainForAHeldTopicQueuesOneConfirmation) {
  // A client that keeps subscribing to what it holds, and never reads, must not grow its
  // queue: control events do not count against the bounds.
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {"a"}, {"p.*"}).ok());
  upstream_.ConfirmAll();
  EXPECT_THAT(Drain(s), ElementsAre("sub:a", "sub:p:p.*"));
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(hub_.Subscribe(s, {"a", "a", "a"}, {"p.*"}).ok());
  }
  EXPECT_THAT(Drain(s), ElementsAre("sub:a", "sub:p:p.*"));
  // Once taken, asking again is answered again.
  ASSERT_TRUE(hub_.Subscribe(s, {"a"}, {}).ok());
  EXPECT_THAT(Drain(s), ElementsAre("sub:a"));
}

// Leaves a topic from inside the fan-out, the moment the first subscriber is reached:
// the fan-out goes on with the list it took before the leave.
class LeavingSink : public Sink {
 public:
  std::function<void()> on_ready;
  void OnReady() override {
    if (auto f = std::exchange(on_ready, nullptr)) f();
  }
};

TEST_F(HubTest, NoMessageAfterLeavingDuringAFanOut) {
  auto first_sink = std::make_shared<LeavingSink>();
  auto first = *hub_.Connect(first_sink, {});
  auto second = NewSubscriber();
  auto third = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(first, {"a"}, {}).ok());
  ASSERT_TRUE(hub_.Subscribe(second, {"a", "b"}, {}).ok());
  ASSERT_TRUE(hub_.Subscribe(third, {"a"}, {}).ok());
  upstream_.ConfirmAll();
  Drain(first);
  Drain(second);
  Drain(third);
  first_sink->on_ready = [&] {
    hub_.Unsubscribe(second, {"a"}, {});
    // Leaving and joining again at once: the running fan-out's message predates the
    // new subscription too.
    hub_.Unsubscribe(third, {"a"}, {});
    ASSERT_TRUE(hub_.Subscribe(third, {"a"}, {}).ok());
  };
  upstream_.listener()->OnMessage(Topic::Channel("a"), "a", "m1");
  EXPECT_THAT(Drain(first), ElementsAre("msg:a:1:m1"));
  EXPECT_THAT(Drain(second), ElementsAre()) << "a message of a topic after leaving it";
  EXPECT_THAT(Drain(third), ElementsAre("sub:a"));
  // Later fan-outs reach who holds the topic, and the other topics are untouched.
  upstream_.listener()->OnMessage(Topic::Channel("a"), "a", "m2");
  upstream_.listener()->OnMessage(Topic::Channel("b"), "b", "m3");
  EXPECT_THAT(Drain(second), ElementsAre("msg:b:1:m3"));
  EXPECT_THAT(Drain(third), ElementsAre("msg:a:2:m2"));
}

TEST_F(HubTest, ARefusedTopicIsTakenFromItsHoldersOnly) {
  auto refused = NewSubscriber();
  auto other = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(refused, {"ok", "forbidden"}, {}).ok());
  ASSERT_TRUE(hub_.Subscribe(other, {"ok"}, {}).ok());
  ASSERT_TRUE(upstream_.ConfirmOne());  // ok
  ASSERT_TRUE(upstream_.RefuseOne(absl::PermissionDeniedError("NOPERM")));
  EXPECT_THAT(Drain(refused), ElementsAre("sub:ok", "refused:forbidden"));
  EXPECT_THAT(Drain(other), ElementsAre("sub:ok"));
  EXPECT_EQ(hub_.Stats().topics(), 1u) << "the refused topic is forgotten";
  EXPECT_TRUE(hub_.Healthy());
  // The subscriber keeps its other topic, and may ask for the refused one again: a new
  // order, which the upstream answers again.
  upstream_.listener()->OnMessage(Topic::Channel("ok"), "ok", "m");
  EXPECT_THAT(Drain(refused), ElementsAre("msg:ok:1:m"));
  ASSERT_TRUE(hub_.Subscribe(refused, {"forbidden"}, {}).ok());
  EXPECT_EQ(upstream_.pending(), 1u);
}

TEST_F(HubTest, DisconnectPolicyClosesOnlyTheSlowSubscriber) {
  SubscriberOptions strict;
  strict.max_queued_messages = 5;
  strict.policy = SlowConsumerPolicy::kDisconnect;
  auto slow = NewSubscriber(strict);
  auto other = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(slow, {"a"}, {}).ok());
  ASSERT_TRUE(hub_.Subscribe(other, {"a"}, {}).ok());
  upstream_.ConfirmAll();
  for (int i = 0; i < 7; ++i) upstream_.listener()->OnMessage(Topic::Channel("a"), "a", "m");
  Event e;
  EXPECT_EQ(slow->Pop(&e), Subscriber::PopResult::kClosed);
  EXPECT_EQ(slow->status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Drain(other).size(), 8u);
  hub_.Disconnect(slow);
  EXPECT_EQ(upstream_.pending(), 0u);
}

TEST_F(HubTest, ReconnectResubscribesAndSendsGaps) {
  std::vector<bool> health;
  auto live = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(live, {"a"}, {"p.*"}).ok());
  upstream_.ConfirmAll();
  upstream_.listener()->OnMessage(Topic::Channel("a"), "a", "before");
  Drain(live);
  EXPECT_TRUE(hub_.Healthy());

  upstream_.Drop();
  EXPECT_FALSE(hub_.Healthy());
  // A subscriber arriving during the outage waits for the new connection.
  auto late = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(late, {"a"}, {}).ok());
  EXPECT_EQ(upstream_.pending(), 0u);

  upstream_.Connect(2);
  ASSERT_EQ(upstream_.pending(), 2u);
  for (const auto& o : upstream_.orders()) EXPECT_EQ(o.epoch, 2u);
  upstream_.ConfirmAll();
  EXPECT_TRUE(hub_.Healthy());
  upstream_.listener()->OnMessage(Topic::Channel("a"), "a", "after");
  EXPECT_THAT(Drain(live),
              ::testing::UnorderedElementsAre("gap:a:redis_reconnect:0",
                                              "gap:p:p.*:redis_reconnect:0", "msg:a:2:after"));
  EXPECT_THAT(Drain(late), ElementsAre("sub:a", "msg:a:2:after"));
}

TEST_F(HubTest, LostTopicsGapOnlyTheirOwnSubscribers) {
  auto on_a = NewSubscriber();
  auto on_b = NewSubscriber();
  auto on_both = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(on_a, {"a"}, {}).ok());
  ASSERT_TRUE(hub_.Subscribe(on_b, {"b"}, {"p.*"}).ok());
  ASSERT_TRUE(hub_.Subscribe(on_both, {"a", "b"}, {}).ok());
  upstream_.ConfirmAll();
  for (const auto& s : {on_a, on_b, on_both}) Drain(s);
  ASSERT_TRUE(hub_.Healthy());

  upstream_.Lose({Topic::Channel("a")});
  EXPECT_FALSE(hub_.Healthy()) << "a topic owes its subscribers a gap";
  EXPECT_EQ(upstream_.held(Topic::Channel("b")), 1);
  // Resubscribed on the same connection, at once.
  ASSERT_EQ(upstream_.pending(), 1u);
  EXPECT_TRUE(upstream_.orders()[0].subscribe);
  EXPECT_EQ(upstream_.orders()[0].topic, Topic::Channel("a"));
  EXPECT_EQ(upstream_.orders()[0].epoch, 1u);
  // The other topics carry on meanwhile; the lost one delivers nothing until renewed.
  upstream_.listener()->OnMessage(Topic::Channel("b"), "b", "b1");
  upstream_.listener()->OnMessage(Topic::Channel("a"), "a", "stray");
  upstream_.ConfirmAll();
  EXPECT_TRUE(hub_.Healthy());
  upstream_.listener()->OnMessage(Topic::Channel("a"), "a", "a1");

  EXPECT_THAT(Drain(on_a), ElementsAre("gap:a:redis_reconnect:0", "msg:a:1:a1"));
  EXPECT_THAT(Drain(on_b), ElementsAre("msg:b:1:b1"));
  EXPECT_THAT(Drain(on_both), ElementsAre("msg:b:1:b1", "gap:a:redis_reconnect:0", "msg:a:1:a1"));
  EXPECT_EQ(upstream_.held(Topic::Channel("a")), 1);
}

TEST_F(HubTest, ALostTopicsOrderInFlightIsSentAgain) {
  // Lost while its SUBSCRIBE was in flight: subscribed again, and its waiting subscriber
  // gets Subscribed only, no gap (it had received nothing yet).
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {"c"}, {}).ok());
  ASSERT_EQ(upstream_.pending(), 1u);
  upstream_.Lose({Topic::Channel("c")});
  ASSERT_EQ(upstream_.pending(), 1u);
  upstream_.ConfirmAll();
  EXPECT_THAT(Drain(s), ElementsAre("sub:c"));
  EXPECT_TRUE(hub_.Healthy());

  // Lost while its UNSUBSCRIBE was in flight: nothing is left to undo, the topic is
  // forgotten, and a later subscriber subscribes it anew.
  hub_.Unsubscribe(s, {"c"}, {});
  ASSERT_EQ(upstream_.pending(), 1u);
  upstream_.Lose({Topic::Channel("c")});
  EXPECT_EQ(upstream_.pending(), 0u);
  EXPECT_EQ(hub_.Stats().channels, 0u);
  auto again = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(again, {"c"}, {}).ok());
  upstream_.ConfirmAll();
  EXPECT_THAT(Drain(again), ElementsAre("sub:c"));
  EXPECT_EQ(upstream_.held(Topic::Channel("c")), 1);
}

TEST_F(HubTest, ALostTopicLeftBeforeItsRenewalOwesNothing) {
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {"a"}, {}).ok());
  upstream_.ConfirmAll();
  Drain(s);
  upstream_.Lose({Topic::Channel("a"), Topic::Channel("never-held")});
  EXPECT_FALSE(hub_.Healthy());
  hub_.Unsubscribe(s, {"a"}, {});
  EXPECT_TRUE(hub_.Healthy());
  // Its renewal, still in flight, is undone once confirmed.
  upstream_.ConfirmAll();
  EXPECT_EQ(upstream_.held(Topic::Channel("a")), 0);
  EXPECT_EQ(hub_.Stats().channels, 0u);
  EXPECT_TRUE(Drain(s).empty());
}

TEST_F(HubTest, OrdersForAnOldConnectionAreNotConfirmed) {
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {"a"}, {}).ok());
  upstream_.Drop();  // The SUBSCRIBE is lost with the connection.
  upstream_.Connect(2);
  upstream_.ConfirmAll();
  EXPECT_THAT(Drain(s), ElementsAre("sub:a"));
  EXPECT_EQ(upstream_.held(Topic::Channel("a")), 1);
  // A stray confirmation changes nothing.
  upstream_.listener()->OnSubscribeConfirmed(Topic::Channel("a"));
  upstream_.listener()->OnUnsubscribeConfirmed(Topic::Channel("zzz"));
  EXPECT_TRUE(Drain(s).empty());
}

TEST_F(HubTest, HealthChangesAreReported) {
  FakeUpstream upstream;
  std::vector<bool> reports;
  HubOptions options;
  options.on_health_change = [&](bool h) { reports.push_back(h); };
  Hub hub(options, &upstream);
  upstream.Connect(1);
  auto s = hub.Connect(std::make_shared<CountingSink>(), {});
  ASSERT_TRUE(hub.Subscribe(*s, {"a"}, {}).ok());
  upstream.ConfirmAll();
  upstream.Drop();
  upstream.Connect(2);
  EXPECT_FALSE(hub.Healthy()) << "healthy before the subscriptions were renewed";
  upstream.ConfirmAll();
  EXPECT_THAT(reports, ElementsAre(true, false, true));
}

TEST_F(HubTest, BadNamesAndLimitsAreRefusedWhole) {
  SubscriberOptions two;
  two.max_topics = 2;
  auto s = NewSubscriber(two);
  EXPECT_EQ(hub_.Subscribe(s, {""}, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hub_.Subscribe(s, {std::string(257, 'x')}, {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hub_.Subscribe(s, {"ok", "bad\nname"}, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hub_.Subscribe(s, {}, {""}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hub_.Subscribe(s, {"a", "b", "c"}, {}).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(upstream_.subscribe_calls(), 0);
  ASSERT_TRUE(hub_.Subscribe(s, {"a", "b"}, {}).ok());
  EXPECT_EQ(hub_.Subscribe(s, {}, {"c*"}).code(), absl::StatusCode::kResourceExhausted);
  // Asking again for a held topic is not a new one.
  EXPECT_TRUE(hub_.Subscribe(s, {"a"}, {}).ok());
}

// The process-wide bound: a Subscribe that would create topics past HubOptions::max_topics
// is refused whole, whoever asks, and says so apart from the per-subscriber limit; topics
// that exist already may still be joined, and a freed one makes room.
TEST(HubTopicCapTest, NewTopicsPastTheServersLimitAreRefused) {
  FakeUpstream upstream;
  HubOptions options;
  options.max_topics = 3;
  Hub hub(options, &upstream);
  upstream.Connect(1);
  auto connect = [&] {
    auto s = hub.Connect(std::make_shared<CountingSink>(), SubscriberOptions{});
    EXPECT_TRUE(s.ok());
    return *s;
  };
  auto first = connect(), second = connect();
  ASSERT_TRUE(hub.Subscribe(first, {"a", "b"}, {}).ok());
  const absl::Status past = hub.Subscribe(second, {"c"}, {"d*"});
  EXPECT_EQ(past.code(), absl::StatusCode::kResourceExhausted) << past;
  EXPECT_TRUE(Hub::IsTooManyTopics(past)) << past;
  EXPECT_EQ(past.message(),
            "too many topics on this server: it holds 2 channels and patterns, 2 more asked, "
            "the limit is 3");
  EXPECT_EQ(upstream.subscribe_calls(), 2) << "nothing of a refused request reaches Redis";
  // Held topics cost nothing new.
  ASSERT_TRUE(hub.Subscribe(second, {"a", "b", "c"}, {}).ok());
  EXPECT_EQ(hub.Stats().topics(), 3u);
  EXPECT_TRUE(Hub::IsTooManyTopics(hub.Subscribe(first, {}, {"d*"})));
  // The per-subscriber limit is not this one.
  SubscriberOptions one;
  one.max_topics = 1;
  auto small = hub.Connect(std::make_shared<CountingSink>(), one);
  ASSERT_TRUE(small.ok());
  const absl::Status own = hub.Subscribe(*small, {"a", "b"}, {});
  EXPECT_EQ(own.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(Hub::IsTooManyTopics(own));
  // Once no one holds "c" and Redis confirmed its unsubscribe, there is room again.
  upstream.ConfirmAll();
  hub.Unsubscribe(second, {"c"}, {});
  upstream.ConfirmAll();
  EXPECT_TRUE(hub.Subscribe(first, {}, {"d*"}).ok());
  hub.Disconnect(first);
  hub.Disconnect(second);
  hub.Disconnect(*small);
}

TEST_F(HubTest, UnsubscribePurgesQueuedMessages) {
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {"a", "b"}, {}).ok());
  upstream_.ConfirmAll();
  Drain(s);
  upstream_.listener()->OnMessage(Topic::Channel("a"), "a", "1");
  upstream_.listener()->OnMessage(Topic::Channel("b"), "b", "1");
  hub_.Unsubscribe(s, {"a"}, {});
  EXPECT_THAT(Drain(s), ElementsAre("msg:b:1:1"));
  upstream_.ConfirmAll();
  EXPECT_EQ(upstream_.held(Topic::Channel("a")), 0);
  EXPECT_EQ(upstream_.held(Topic::Channel("b")), 1);
}

TEST_F(HubTest, ShutdownClosesEverySubscriber) {
  auto a = NewSubscriber();
  auto b = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(a, {"a"}, {}).ok());
  hub_.Shutdown();
  Event e;
  EXPECT_EQ(a->Pop(&e), Subscriber::PopResult::kClosed);
  EXPECT_EQ(b->Pop(&e), Subscriber::PopResult::kClosed);
  EXPECT_EQ(a->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_GE(sinks_[1]->ready(), 1);
  EXPECT_FALSE(hub_.Connect(std::make_shared<CountingSink>(), {}).ok());
}

TEST_F(HubTest, PublishValidatesThenForwards) {
  absl::StatusOr<PublishResult> got;
  auto keep = [&](absl::StatusOr<PublishResult> r) { got = std::move(r); };
  hub_.Publish("", "x", "", keep);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  hub_.Publish("a", std::string((1 << 20) + 1, 'x'), "", keep);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kResourceExhausted);
  hub_.Publish("a", "hello", "", keep);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->receivers, 7);
  EXPECT_EQ(got->position.offset, 0u);
  EXPECT_EQ(upstream_.last_publish_, "a=hello");
}

// Many threads join and leave a few channels while another confirms orders as Redis
// would. However they interleave, Redis ends holding exactly the channels that have
// subscribers, never two subscriptions of one, and every subscriber got its Subscribed.
TEST_F(HubTest, RacingJoinsAndLeavesKeepOneSubscriptionPerChannel) {
  std::atomic<bool> done{false};
  std::thread confirmer([&] {
    while (!done.load()) {
      if (!upstream_.ConfirmOne()) std::this_thread::yield();
    }
  });
  const std::vector<std::string> channels = {"x", "y", "z"};
  std::vector<std::thread> workers;
  std::mutex keep_mu;
  std::vector<std::shared_ptr<Subscriber>> kept;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937 rng(w);
      for (int i = 0; i < 500; ++i) {
        auto s = hub_.Connect(std::make_shared<CountingSink>(), {});
        ASSERT_TRUE(s.ok());
        const std::string& c = channels[rng() % channels.size()];
        ASSERT_TRUE(hub_.Subscribe(*s, {c}, {}).ok());
        if (rng() % 4 == 0) {
          std::lock_guard<std::mutex> l(keep_mu);
          kept.push_back(*s);
        } else {
          hub_.Disconnect(*s);
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  done = true;
  confirmer.join();
  upstream_.ConfirmAll();
  absl::flat_hash_set<std::string> wanted;
  for (auto& s : kept) {
    for (const auto& t : s->topics()) wanted.insert(t.name);
    std::vector<std::string> got = Drain(s);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].substr(0, 4), "sub:");
  }
  for (const auto& c : channels) {
    EXPECT_EQ(upstream_.held(Topic::Channel(c)), wanted.contains(c) ? 1 : 0) << c;
  }
}

}  // namespace
}  // namespace bridge::hub
