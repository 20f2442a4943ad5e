// The log's rate limiting: per source, with the time passed in (no clock, no sleeps).
#include "bridge/common/log.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bridge/common/log_rate_limiter.h"

namespace bridge {
namespace {

TEST(LogRateLimiterTest, AdmitsABurstPerIntervalAndCountsTheRest) {
  LogRateLimiter limiter(3, absl::Seconds(10));
  const absl::Time start = absl::FromUnixSeconds(1000);
  int64_t suppressed = -1;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.Admit(start + absl::Seconds(i), &suppressed)) << i;
    EXPECT_EQ(suppressed, 0);
  }
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(limiter.Admit(start + absl::Seconds(5), &suppressed));
  EXPECT_FALSE(limiter.Admit(start + absl::Seconds(10) - absl::Nanoseconds(1), &suppressed));
  // A new interval: the first line admitted reports the 101 left out, the next none.
  ASSERT_TRUE(limiter.Admit(start + absl::Seconds(10), &suppressed));
  EXPECT_EQ(suppressed, 101);
  ASSERT_TRUE(limiter.Admit(start + absl::Seconds(11), &suppressed));
  EXPECT_EQ(suppressed, 0);
}

TEST(LogRateLimiterTest, AQuietSourceIsNeverHeldBack) {
  LogRateLimiter limiter(1, absl::Seconds(1));
  const absl::Time start = absl::FromUnixSeconds(1000);
  int64_t suppressed = -1;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(limiter.Admit(start + absl::Seconds(i), &suppressed)) << i;
    EXPECT_EQ(suppressed, 0);
  }
}

int CountLines(const std::string& text, const std::string& needle) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, needle)) ++n;
  }
  return n;
}

void LogFromOneSite(int i) { BRIDGE_LOG(Warning, "one site %d", i); }

TEST(LogTest, EachCallSiteWritesAtMostItsBurst) {
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 500; ++i) LogFromOneSite(i);
  BRIDGE_LOG(Warning, "another site");
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(CountLines(out, "WARN one site"), LogRateLimiter::kDefaultBurst) << out;
  EXPECT_EQ(CountLines(out, "WARN another site"), 1) << out;
}

TEST(LogTest, TheFirstLineAfterASuppressionSaysHowManyWereLeftOut) {
  LogRateLimiter source(1, absl::Seconds(1));
  const absl::Time past = absl::Now() - absl::Seconds(5);
  int64_t suppressed = 0;
  ASSERT_TRUE(source.Admit(past, &suppressed));
  ASSERT_FALSE(source.Admit(past, &suppressed));
  ASSERT_FALSE(source.Admit(past, &suppressed));
  ::testing::internal::CaptureStderr();
  Log(source, LogLevel::kError, "accept: %s", "too many open files");
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("ERROR accept: too many open files [2 lines like this suppressed]\n"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace bridge
