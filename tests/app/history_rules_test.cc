#include "bridge/app/history_rules.h"

#include <gtest/gtest.h>

namespace bridge {
namespace {

TEST(HistoryRulesTest, FirstMatchingRuleGivesThePolicy) {
  absl::StatusOr<HistoryRules> rules =
      HistoryRules::Parse("orders.vip=50/1h, orders.*=1000/24h,chat.*=100/7d,log.*=10");
  ASSERT_TRUE(rules.ok()) << rules.status();
  auto vip = rules->For("orders.vip");
  ASSERT_TRUE(vip.has_value());
  EXPECT_EQ(vip->max_len, 50u);
  EXPECT_EQ(vip->ttl, absl::Hours(1));
  auto order = rules->For("orders.eu");
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(order->max_len, 1000u);
  EXPECT_EQ(rules->For("chat.x")->ttl, absl::Hours(24 * 7));
  EXPECT_EQ(rules->For("log.a")->ttl, absl::Hours(24));  // the default
  EXPECT_FALSE(rules->For("news").has_value());
}

TEST(HistoryRulesTest, EmptyMeansNoDurableChannel) {
  absl::StatusOr<HistoryRules> rules = HistoryRules::Parse("");
  ASSERT_TRUE(rules.ok());
  EXPECT_TRUE(rules->empty());
  EXPECT_FALSE(rules->For("a").has_value());
}

TEST(HistoryRulesTest, BadRulesAreRefusedByName) {
  for (const char* bad : {"orders.*", "=10/1h", "a=0/1h", "a=x/1h", "a=10/soon", "a=10/0s",
                          "a[=10/1h", "a=99999999999/1h"}) {
    absl::StatusOr<HistoryRules> rules = HistoryRules::Parse(bad);
    EXPECT_EQ(rules.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(HistoryRules::Parse("ok=1,a=x").status().message().find("\"a=x\""), std::string::npos);
}

}  // namespace
}  // namespace bridge
