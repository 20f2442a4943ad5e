#include "bridge/redis/subscribe_refused.h"

#include "absl/status/status.h"
#include "bridge/hub/topic.h"
#include "gtest/gtest.h"

namespace bridge::redis {
namespace {

using ::bridge::hub::Topic;

TEST(SubscribeRefusedErrorTest, WithoutTheReplyExplainsTheAcl) {
  absl::Status channel = SubscribeRefusedError(Topic::Channel("orders"));
  EXPECT_EQ(channel.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(channel.message(),
            "redis refused to subscribe channel orders (its ACL for bridge does not allow it)");
  absl::Status pattern = SubscribeRefusedError(Topic::Pattern("orders.*"));
  EXPECT_EQ(pattern.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(pattern.message(),
            "redis refused to subscribe pattern orders.* (its ACL for bridge does not allow it)");
}

TEST(SubscribeRefusedErrorTest, WithTheReplyQuotesIt) {
  absl::Status noperm = SubscribeRefusedError(
      Topic::Channel("orders"),
      "NOPERM this user has no permissions to access one of the channels used as arguments");
  EXPECT_EQ(noperm.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(noperm.message(),
            "redis refused to subscribe channel orders: NOPERM this user has no permissions to "
            "access one of the channels used as arguments");
  // Anything else Redis refuses a subscribe with is not an ACL's doing.
  absl::Status other = SubscribeRefusedError(Topic::Pattern("*"), "ERR something else");
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(other.message(), "redis refused to subscribe pattern *: ERR something else");
}

// A delivery probe's channel is Bridge's own refusal, not Redis': said so, whatever the
// reply. A pattern is not refused for matching probes (their messages are dropped instead).
TEST(SubscribeRefusedErrorTest, ProbeChannelsAreReserved) {
  absl::Status reserved = SubscribeRefusedError(Topic::Channel("__bridge_probe__:x"));
  EXPECT_EQ(reserved.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(reserved.message(),
            "channel __bridge_probe__:x is reserved: channels starting with __bridge_probe__: "
            "carry Bridge's delivery probes");
  EXPECT_EQ(SubscribeRefusedError(Topic::Pattern("__bridge_probe__:*")).message(),
            "redis refused to subscribe pattern __bridge_probe__:* (its ACL for bridge does not "
            "allow it)");
}

}  // namespace
}  // namespace bridge::redis
