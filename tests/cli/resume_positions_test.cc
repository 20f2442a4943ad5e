#include "clients/cli/resume_positions.h"

#include <string>

#include "gtest/gtest.h"

namespace bridgectl {
namespace {

bridge::v1::Message Message(const std::string& channel, uint64_t offset, const std::string& epoch,
                            const std::string& pattern = "") {
  bridge::v1::Message m;
  m.set_channel(channel);
  m.set_pattern(pattern);
  m.set_offset(offset);
  m.set_epoch(epoch);
  return m;
}

TEST(ResumePositionsTest, NothingSeenAsksAsGiven) {
  const ResumePositions positions;
  const bridge::v1::SubscribeRequest r = positions.Request({"a", "b"}, {"p.*"});
  EXPECT_EQ(r.channels_size(), 2);
  EXPECT_EQ(r.patterns(0), "p.*");
  EXPECT_TRUE(r.resume().empty());
}

TEST(ResumePositionsTest, ADurableChannelSeenResumesInsteadOfSubscribing) {
  ResumePositions positions;
  positions.Observe(Message("orders", 3, "e1"));
  positions.Observe(Message("plain", 0, ""));  // not durable: nothing to resume
  const bridge::v1::SubscribeRequest r = positions.Request({"orders", "plain"}, {});
  ASSERT_EQ(r.channels_size(), 1);
  EXPECT_EQ(r.channels(0), "plain");
  ASSERT_EQ(r.resume().size(), 1u);
  EXPECT_EQ(r.resume().at("orders").offset(), 3u);
  EXPECT_EQ(r.resume().at("orders").epoch(), "e1");
  EXPECT_TRUE(positions.Has("orders"));
  EXPECT_FALSE(positions.Has("plain"));
}

TEST(ResumePositionsTest, MovesForwardWithinAnEpochAndFollowsANewOne) {
  ResumePositions positions;
  positions.Observe(Message("orders", 5, "e1"));
  positions.Observe(Message("orders", 4, "e1"));  // older: kept at 5
  EXPECT_EQ(positions.positions().at("orders").offset(), 5u);
  positions.Observe(Message("orders", 6, "e1"));
  EXPECT_EQ(positions.positions().at("orders").offset(), 6u);
  // The history was lost and started over: the new epoch's offsets replace the old.
  positions.Observe(Message("orders", 1, "e2"));
  EXPECT_EQ(positions.positions().at("orders").offset(), 1u);
  EXPECT_EQ(positions.positions().at("orders").epoch(), "e2");
}

TEST(ResumePositionsTest, APatternsMatchIsNotResumed) {
  ResumePositions positions;
  positions.Observe(Message("orders.eu", 2, "e1", "orders.*"));
  EXPECT_FALSE(positions.Has("orders.eu"));
  const bridge::v1::SubscribeRequest r = positions.Request({}, {"orders.*"});
  EXPECT_TRUE(r.resume().empty());
  EXPECT_EQ(r.patterns(0), "orders.*");
}

TEST(ResumePositionsTest, OnlyChannelsOfTheSubscriptionAreResumed) {
  ResumePositions positions;
  positions.Observe(Message("orders", 2, "e1"));
  EXPECT_TRUE(positions.Request({"other"}, {}).resume().empty());
}

}  // namespace
}  // namespace bridgectl
