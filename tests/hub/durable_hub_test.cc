// Durable channels in the hub: offsets on messages, server-side recovery after an
// upstream outage, and subscriber resumes, against a FakeUpstream whose history reads
// complete when the test says so (tests/integration runs the same against Redis).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bridge/hub/hub.h"
#include "tests/hub/fake_upstream.h"

namespace bridge::hub {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

HubOptions DurableOptions() {
  HubOptions options;
  options.durable = [](std::string_view channel) -> std::optional<HistoryPolicy> {
    if (channel.substr(0, 2) != "d.") return std::nullopt;
    return HistoryPolicy{channel == "d.short" ? 3u : 1000u, absl::Hours(1)};
  };
  options.history_page = 4;  // small, so that reads take several pages
  return options;
}

class DurableHubTest : public ::testing::Test {
 protected:
  DurableHubTest() : hub_(DurableOptions(), &upstream_) { upstream_.Connect(1); }

  std::shared_ptr<Subscriber> NewSubscriber() {
    auto sink = std::make_shared<CountingSink>();
    sinks_.push_back(sink);
    auto s = hub_.Connect(sink, {});
    EXPECT_TRUE(s.ok());
    return *s;
  }

  // Events as strings: "sub:c", "gap:c:reason:n", "msg:c:offset:payload", with "(r)" after
  // the offset of a recovered message.
  static std::vector<std::string> Drain(const std::shared_ptr<Subscriber>& s) {
    std::vector<std::string> out;
    Event e;
    while (s->Pop(&e) == Subscriber::PopResult::kEvent) {
      switch (e.type) {
        case Event::Type::kSubscribed:
          out.push_back("sub:" + e.topic.name);
          break;
        case Event::Type::kGap:
          out.push_back(absl::StrCat("gap:", e.topic.name, ":", e.reason, ":", e.dropped));
          break;
        case Event::Type::kRefused:
          out.push_back("refused:" + e.topic.name);
          break;
        case Event::Type::kMessage:
          out.push_back(absl::StrCat("msg:", e.message->channel(), ":", e.message->offset(),
                                     e.message->recovered() ? "(r)" : "", ":",
                                     e.message->payload()));
          break;
      }
    }
    return out;
  }

  PublishResult Publish(const std::string& channel, const std::string& payload) {
    absl::StatusOr<PublishResult> got;
    hub_.Publish(channel, payload, "",
                 [&](absl::StatusOr<PublishResult> r) { got = std::move(r); });
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : PublishResult{};
  }

  // A live subscriber of `channel`, its Subscribed taken and the position learnt.
  std::shared_ptr<Subscriber> Live(const std::string& channel) {
    auto s = NewSubscriber();
    EXPECT_TRUE(hub_.Subscribe(s, {channel}, {}).ok());
    upstream_.ConfirmAll();
    upstream_.CompleteAllReads();
    EXPECT_THAT(Drain(s), ElementsAre("sub:" + channel));
    return s;
  }

  FakeUpstream upstream_;
  Hub hub_;
  std::vector<std::shared_ptr<CountingSink>> sinks_;
};

TEST_F(DurableHubTest, MessagesCarryTheirOffsetAndPublishAnswersIt) {
  auto s = Live("d.a");
  EXPECT_EQ(Publish("d.a", "one").position.offset, 1u);
  const PublishResult second = Publish("d.a", "two");
  EXPECT_EQ(second.position.offset, 2u);
  EXPECT_FALSE(second.position.epoch.empty());
  upstream_.DeliverAll();
  EXPECT_THAT(Drain(s), ElementsAre("msg:d.a:1:one", "msg:d.a:2:two"));
  // A channel that is not durable publishes plainly.
  EXPECT_EQ(Publish("plain", "x").position.offset, 0u);
}

TEST_F(DurableHubTest, AReconnectRecoversWhatWasMissedOnceAndWithoutAGap) {
  auto s = Live("d.a");
  auto t = Live("d.a");
  for (int i = 1; i <= 3; ++i) Publish("d.a", absl::StrCat("m", i));
  upstream_.DeliverAll();
  Drain(s);
  Drain(t);
  // The connection drops with 4 published and not delivered; 5..9 are published while
  // Bridge is away.
  Publish("d.a", "m4");
  upstream_.Drop();
  upstream_.LoseUndelivered();
  for (int i = 5; i <= 9; ++i) Publish("d.a", absl::StrCat("m", i));
  upstream_.LoseUndelivered();
  EXPECT_FALSE(hub_.Healthy());
  const int reads_before = upstream_.reads_made();
  upstream_.Connect(2);
  upstream_.ConfirmAll();
  // Subscribed again; the recovery reads while live messages arrive: 10 is delivered live
  // before the read ends, 11 is published before the read and delivered after it.
  Publish("d.a", "m10");
  upstream_.DeliverOne();
  Publish("d.a", "m11");
  upstream_.CompleteAllReads();
  upstream_.DeliverAll();
  const std::vector<std::string> expected = {
      "msg:d.a:4(r):m4", "msg:d.a:5(r):m5", "msg:d.a:6(r):m6",   "msg:d.a:7(r):m7",
      "msg:d.a:8(r):m8", "msg:d.a:9(r):m9", "msg:d.a:10(r):m10", "msg:d.a:11(r):m11"};
  EXPECT_EQ(Drain(s), expected);
  EXPECT_EQ(Drain(t), expected);
  EXPECT_TRUE(hub_.Healthy());
  // One recovery for the channel, whatever the number of subscribers: pages of 4 after
  // offset 3, until one reaches the latest offset (4..7, 8..11).
  EXPECT_EQ(upstream_.reads_made() - reads_before, 2);
  Publish("d.a", "m12");
  upstream_.DeliverAll();
  EXPECT_THAT(Drain(s), ElementsAre("msg:d.a:12:m12"));
}

TEST_F(DurableHubTest, ARecoveryThatFindsTheHistoryLostSaysSo) {
  auto s = Live("d.a");
  Publish("d.a", "m1");
  upstream_.DeliverAll();
  Drain(s);
  upstream_.Drop();
  upstream_.ForgetHistory("d.a");  // Redis restarted without persistence
  Publish("d.a", "n1");
  upstream_.LoseUndelivered();
  upstream_.Connect(2);
  upstream_.ConfirmAll();
  upstream_.CompleteAllReads();
  EXPECT_THAT(Drain(s), ElementsAre("gap:d.a:history_lost:0", "msg:d.a:1(r):n1"));
}

TEST_F(DurableHubTest, PlainChannelsStillGetAReconnectGap) {
  auto sink = std::make_shared<CountingSink>();
  auto s = *hub_.Connect(sink, {});
  ASSERT_TRUE(hub_.Subscribe(s, {"plain"}, {}).ok());
  upstream_.ConfirmAll();
  Drain(s);
  upstream_.Drop();
  upstream_.Connect(2);
  upstream_.ConfirmAll();
  EXPECT_THAT(Drain(s), ElementsAre("gap:plain:redis_reconnect:0"));
  EXPECT_EQ(upstream_.reads_made(), 0);
}

TEST_F(DurableHubTest, AResumeMergesHistoryAndLiveWithNoDuplicateAndNoHole) {
  auto keeper = Live("d.a");
  for (int i = 1; i <= 5; ++i) Publish("d.a", absl::StrCat("m", i));
  upstream_.DeliverAll();
  const StreamPosition seen{2, Publish("d.a", "m6").position.epoch};
  upstream_.DeliverAll();
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {}, {}, ResumePositions{{"d.a", seen}}).ok());
  // Live at once (the channel is held): Subscribed, then nothing until the read is done.
  // 7 arrives live meanwhile; 8 is published before the read and delivered after it.
  Publish("d.a", "m7");
  upstream_.DeliverOne();
  Publish("d.a", "m8");
  EXPECT_THAT(Drain(s), ElementsAre("sub:d.a"));
  upstream_.CompleteAllReads();
  upstream_.DeliverAll();
  Publish("d.a", "m9");
  upstream_.DeliverAll();
  EXPECT_THAT(Drain(s),
              ElementsAre("msg:d.a:3(r):m3", "msg:d.a:4(r):m4", "msg:d.a:5(r):m5",
                          "msg:d.a:6(r):m6", "msg:d.a:7(r):m7", "msg:d.a:8(r):m8", "msg:d.a:9:m9"));
}

TEST_F(DurableHubTest, AResumeBeforeTheChannelIsLiveWaitsForIt) {
  for (int i = 1; i <= 3; ++i) Publish("d.b", absl::StrCat("m", i));
  const std::string epoch = Publish("d.b", "m4").position.epoch;
  upstream_.LoseUndelivered();  // nobody subscribed yet
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {"d.b"}, {}, ResumePositions{{"d.b", {1, epoch}}}).ok());
  EXPECT_EQ(upstream_.reads_made(), 0);  // not before Redis confirmed the subscription
  upstream_.ConfirmAll();
  upstream_.CompleteAllReads();
  EXPECT_THAT(Drain(s),
              ElementsAre("sub:d.b", "msg:d.b:2(r):m2", "msg:d.b:3(r):m3", "msg:d.b:4(r):m4"));
}

TEST_F(DurableHubTest, AResumeFromTooFarBackGivesAHistoryLostGapWithTheCount) {
  for (int i = 1; i <= 10; ++i) Publish("d.short", absl::StrCat("m", i));
  const std::string epoch = Publish("d.short", "m11").position.epoch;
  upstream_.LoseUndelivered();
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {}, {}, ResumePositions{{"d.short", {2, epoch}}}).ok());
  upstream_.ConfirmAll();
  upstream_.CompleteAllReads();
  // Kept: 9, 10, 11; lost: 3..8.
  EXPECT_THAT(Drain(s),
              ElementsAre("sub:d.short", "gap:d.short:history_lost:6", "msg:d.short:9(r):m9",
                          "msg:d.short:10(r):m10", "msg:d.short:11(r):m11"));
}

TEST_F(DurableHubTest, AResumeFromAnotherEpochStartsFromTheOldestKept) {
  Publish("d.a", "m1");
  Publish("d.a", "m2");
  upstream_.LoseUndelivered();
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {}, {}, ResumePositions{{"d.a", {40, "gone"}}}).ok());
  upstream_.ConfirmAll();
  upstream_.CompleteAllReads();
  EXPECT_THAT(Drain(s), ElementsAre("sub:d.a", "gap:d.a:history_lost:0", "msg:d.a:1(r):m1",
                                    "msg:d.a:2(r):m2"));
}

TEST_F(DurableHubTest, ResumesOfPlainChannelsAreIgnored) {
  auto s = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(s, {}, {}, ResumePositions{{"plain", {4, "e"}}}).ok());
  upstream_.ConfirmAll();
  EXPECT_THAT(Drain(s), ElementsAre("sub:plain"));
  EXPECT_EQ(upstream_.reads_made(), 0);
}

TEST_F(DurableHubTest, HistoryReadsTheLatestOrThoseAfterAPosition) {
  for (int i = 1; i <= 6; ++i) Publish("d.a", absl::StrCat("m", i));
  absl::StatusOr<HistoryResult> got;
  auto keep = [&](absl::StatusOr<HistoryResult> r) { got = std::move(r); };
  hub_.History("d.a", std::nullopt, 2, keep);
  upstream_.CompleteAllReads();
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->top, 6u);
  ASSERT_EQ(got->messages.size(), 2u);
  EXPECT_EQ(got->messages[0]->offset(), 5u);
  EXPECT_TRUE(got->messages[0]->recovered());
  const std::string epoch = got->epoch;
  hub_.History("d.a", StreamPosition{3, epoch}, 0, keep);
  upstream_.CompleteAllReads();
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->messages.size(), 3u);  // one page: 4 entries at most, 3 left
  EXPECT_EQ(got->messages.front()->payload(), "m4");
  EXPECT_FALSE(got->history_lost);
  hub_.History("d.a", StreamPosition{3, "other"}, 0, keep);
  upstream_.CompleteAllReads();
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->history_lost);
  EXPECT_EQ(got->messages.front()->offset(), 1u);
  hub_.History("plain", std::nullopt, 0, keep);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(DurableHubTest, LeavingDuringAResumeEndsIt) {
  Publish("d.a", "m1");
  Publish("d.a", "m2");
  upstream_.LoseUndelivered();
  auto s = NewSubscriber();
  // From the start: everything kept.
  ASSERT_TRUE(hub_.Subscribe(s, {}, {}, ResumePositions{{"d.a", {0, ""}}}).ok());
  upstream_.ConfirmAll();
  hub_.Unsubscribe(s, {"d.a"}, {});
  upstream_.CompleteAllReads();
  EXPECT_THAT(Drain(s), IsEmpty());
  auto t = NewSubscriber();
  ASSERT_TRUE(hub_.Subscribe(t, {}, {}, ResumePositions{{"d.a", {0, ""}}}).ok());
  upstream_.ConfirmAll();
  upstream_.CompleteAllReads();
  EXPECT_THAT(Drain(t), ElementsAre("sub:d.a", "msg:d.a:1(r):m1", "msg:d.a:2(r):m2"));
  hub_.Disconnect(s);
}

}  // namespace
}  // namespace bridge::hub
