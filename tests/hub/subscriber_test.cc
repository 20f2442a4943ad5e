#include "bridge/hub/subscriber.h"

#include <gtest/gtest.h>

#include "tests/hub/fake_upstream.h"

namespace bridge::hub {
namespace {

std::shared_ptr<const Message> Msg(uint64_t seq, std::string payload = "p") {
  return std::make_shared<const Message>("c", "", std::move(payload), seq);
}

TEST(SubscriberTest, NotifiesOnlyWhenArmed) {
  auto sink = std::make_shared<CountingSink>();
  Subscriber s(sink, {});
  EXPECT_NE(s.PushMessage(Msg(1)), nullptr);
  EXPECT_EQ(s.PushMessage(Msg(2)), nullptr) << "woke the front end twice for one backlog";
  Event e;
  EXPECT_EQ(s.Pop(&e), Subscriber::PopResult::kEvent);
  EXPECT_EQ(s.Pop(&e), Subscriber::PopResult::kEvent);
  EXPECT_EQ(s.PushMessage(Msg(3)), nullptr) << "re-armed before the queue was seen empty";
  EXPECT_EQ(s.Pop(&e), Subscriber::PopResult::kEvent);
  EXPECT_EQ(s.Pop(&e), Subscriber::PopResult::kEmpty);
  EXPECT_NE(s.PushMessage(Msg(4)), nullptr);
}

TEST(SubscriberTest, PopManyTakesInOrderUpToMax) {
  Subscriber s(std::make_shared<CountingSink>(), {});
  for (uint64_t i = 1; i <= 5; ++i) s.PushMessage(Msg(i));
  std::vector<Event> out;
  EXPECT_EQ(s.PopMany(&out, 3), Subscriber::PopResult::kEvent);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].message->seq(), 3u);
  EXPECT_EQ(s.PopMany(&out, 10), Subscriber::PopResult::kEvent);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[4].message->seq(), 5u);
  EXPECT_EQ(s.PopMany(&out, 10), Subscriber::PopResult::kEmpty);
}

TEST(SubscriberTest, ControlEventsSurviveAFullQueue) {
  SubscriberOptions o;
  o.max_queued_messages = 2;
  Subscriber s(std::make_shared<CountingSink>(), o);
  s.PushControl(Event::Subscribed(Topic::Channel("c")));
  for (uint64_t i = 1; i <= 4; ++i) s.PushMessage(Msg(i));
  Event e;
  ASSERT_EQ(s.Pop(&e), Subscriber::PopResult::kEvent);
  EXPECT_EQ(e.type, Event::Type::kSubscribed);
  ASSERT_EQ(s.Pop(&e), Subscriber::PopResult::kEvent);
  EXPECT_EQ(e.type, Event::Type::kGap);
  EXPECT_EQ(e.dropped, 2u);
  ASSERT_EQ(s.Pop(&e), Subscriber::PopResult::kEvent);
  EXPECT_EQ(e.message->seq(), 3u);
}

// The hub's totals count every message lost (dropped, or too large to queue) and every
// subscriber disconnected; deliveries that fit count nothing.
TEST(SubscriberTest, TotalsCountLossesOnly) {
  SubscriberTotals totals;
  SubscriberOptions o;
  o.max_queued_messages = 2;
  o.max_queued_bytes = 1000;
  Subscriber dropping(std::make_shared<CountingSink>(), o, &totals);
  dropping.PushMessage(Msg(1));
  dropping.PushMessage(Msg(2));
  EXPECT_EQ(totals.dropped.load(), 0u);
  for (uint64_t i = 3; i <= 5; ++i) dropping.PushMessage(Msg(i));
  EXPECT_EQ(totals.dropped.load(), 3u);
  dropping.PushMessage(Msg(6, std::string(2000, 'x')));
  EXPECT_EQ(totals.dropped.load(), 4u) << "a message too large to queue is lost too";
  o.policy = SlowConsumerPolicy::kDisconnect;
  Subscriber closing(std::make_shared<CountingSink>(), o, &totals);
  for (uint64_t i = 1; i <= 3; ++i) closing.PushMessage(Msg(i));
  EXPECT_EQ(totals.disconnected.load(), 1u);
  EXPECT_EQ(closing.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(totals.dropped.load(), 4u);
}

TEST(SubscriberTest, DetachedSinkIsNeverCalled) {
  auto sink = std::make_shared<CountingSink>();
  Subscriber s(sink, {});
  s.DetachSink();
  EXPECT_EQ(s.PushMessage(Msg(1)), nullptr);
  EXPECT_EQ(s.Close(absl::UnavailableError("x")), nullptr);
}

}  // namespace
}  // namespace bridge::hub
