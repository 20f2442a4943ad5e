// libprotobuf's log lines go through the bridge log and its rate limit.
#include "bridge/common/protobuf_log.h"

#include <google/protobuf/stubs/logging.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "bridge/common/log_rate_limiter.h"

namespace bridge {
namespace {

TEST(ProtobufLogTest, LinesAreOursAndLimited) {
  RouteProtobufLogs();
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 200; ++i) GOOGLE_LOG(ERROR) << "cannot parse message " << i;
  const std::string out = ::testing::internal::GetCapturedStderr();
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    ++lines;
    EXPECT_TRUE(absl::StrContains(line, "Z ERROR libprotobuf ")) << line;
    EXPECT_TRUE(absl::StrContains(line, "protobuf_log_test.cc:")) << line;
  }
  EXPECT_EQ(lines, LogRateLimiter::kDefaultBurst) << out;
}

}  // namespace
}  // namespace bridge
