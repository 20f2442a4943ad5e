#include "bridge/redis/cluster_slot.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/redis_cluster.h"

namespace bridge::redis {
namespace {

TEST(Crc16Test, MatchesTheXmodemCheckValue) {
  // The CRC-16/XMODEM check value, also the one Redis' crc16.c cites.
  EXPECT_EQ(Crc16("123456789"), 0x31C3);
}

TEST(KeySlotTest, HashTagRules) {
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("{user1000}.followers"), KeySlot("user1000"));
  // An empty tag hashes the whole name; only the first '{' and the '}' after it count.
  EXPECT_EQ(KeySlot("foo{}{bar}"), Crc16("foo{}{bar}") & 16383);
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));
  EXPECT_EQ(KeySlot("no}tag{"), Crc16("no}tag{") & 16383);
}

TEST(HashTagInRangesTest, LandsANameOnTheRanges) {
  EXPECT_EQ(HashTagInRanges({}), "");
  EXPECT_EQ(HashTagInRanges({{5, 4}}), "");
  // The ends, and the slots whose first decimal tag comes last (1469: 109757).
  for (int slot : {0, 16383, 1469, 5532, 13964}) {
    const std::string tag = HashTagInRanges({{slot, slot}});
    ASSERT_FALSE(tag.empty()) << slot;
    EXPECT_EQ(KeySlot("__bridge_probe__:00ff" + tag), slot) << tag;
  }
  const int slot = KeySlot(HashTagInRanges({{0, 99}, {16000, 16383}}));
  EXPECT_TRUE(slot <= 99 || slot >= 16000) << slot;
}

// Against the server's own answer, on a real cluster.
class KeySlotClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new testing::RedisCluster(); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static testing::RedisCluster* cluster_;
};

testing::RedisCluster* KeySlotClusterTest::cluster_ = nullptr;

TEST_F(KeySlotClusterTest, AgreesWithClusterKeyslot) {
  std::vector<std::string> names = {"",
                                    "a",
                                    "orders.1",
                                    "{orders}.1",
                                    "{}",
                                    "{}x",
                                    "x{}",
                                    "{a}{b}",
                                    "{{a}}",
                                    "a{b",
                                    "a}b{c}",
                                    "{user1000}.following",
                                    "é{ü}",
                                    "prices.EUR",
                                    "x{y}z{w}",
                                    "}{",
                                    std::string("bin\0ary", 7)};
  for (int i = 0; i < 300; ++i) {
    names.push_back(absl::StrCat("channel.", i));
    names.push_back(absl::StrCat("{tag", i % 17, "}.orders.", i));
    names.push_back(absl::StrCat("pre", i, "{", i * 7, "}post{", i, "}"));
    names.push_back(std::string(static_cast<size_t>(i % 40), static_cast<char>('a' + i % 26)));
  }
  for (const std::string& name : names) {
    EXPECT_EQ(KeySlot(name), cluster_->KeySlot(name)) << "name: '" << name << "'";
  }
}

}  // namespace
}  // namespace bridge::redis
