// gRPC core's log lines go through the bridge log and its rate limit.
#include "bridge/common/grpc_log.h"

#include <grpc/support/log.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "bridge/common/log_rate_limiter.h"

namespace bridge {
namespace {

TEST(GrpcLogTest, LinesAreOursAndLimited) {
  RouteGrpcLogs();
  // What grpc_init does: GRPC_VERBOSITY, ERROR by default.
  gpr_log_verbosity_init();
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 200; ++i) gpr_log(GPR_ERROR, "Failed accept4: Too many open files %d", i);
  const std::string out = ::testing::internal::GetCapturedStderr();
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    ++lines;
    EXPECT_TRUE(absl::StrContains(line, "Z ERROR grpc ")) << line;
    EXPECT_TRUE(absl::StrContains(line, "grpc_log_test.cc:")) << line;
  }
  EXPECT_EQ(lines, LogRateLimiter::kDefaultBurst) << out;
}

}  // namespace
}  // namespace bridge
