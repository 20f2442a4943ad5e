#include "bridge/auth/glob.h"

#include <string>

#include "gtest/gtest.h"

namespace bridge::auth {
namespace {

TEST(GlobTest, StarsQuestionMarksAndLiterals) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*", "anything at all"));
  EXPECT_TRUE(GlobMatch("news.*", "news."));
  EXPECT_TRUE(GlobMatch("news.*", "news.sport.today"));
  EXPECT_FALSE(GlobMatch("news.*", "news"));
  EXPECT_FALSE(GlobMatch("news.*", "weather.news.x"));
  EXPECT_TRUE(GlobMatch("h?llo", "hello"));
  EXPECT_FALSE(GlobMatch("h?llo", "hllo"));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYc"));
  EXPECT_TRUE(GlobMatch("a*b*c", "abcbc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXXbYY"));
  EXPECT_TRUE(GlobMatch("*.done", "job.7.done"));
  EXPECT_FALSE(GlobMatch("exact", "exactly"));
  EXPECT_FALSE(GlobMatch("", "x"));
  EXPECT_TRUE(GlobMatch("", ""));
}

TEST(GlobTest, SetsRangesNegationAndEscapes) {
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[ae]llo", "hillo"));
  EXPECT_TRUE(GlobMatch("h[^e]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[^e]llo", "hello"));
  EXPECT_TRUE(GlobMatch("room.[0-9]", "room.7"));
  EXPECT_FALSE(GlobMatch("room.[0-9]", "room.x"));
  EXPECT_TRUE(GlobMatch("room.[9-0]", "room.5")) << "a reversed range is the same range";
  EXPECT_TRUE(GlobMatch("a\\*b", "a*b"));
  EXPECT_FALSE(GlobMatch("a\\*b", "aXb"));
  EXPECT_TRUE(GlobMatch("q\\?", "q?"));
  EXPECT_FALSE(GlobMatch("q\\?", "qx"));
  EXPECT_TRUE(GlobMatch("[\\]]", "]"));
  // An unclosed set runs to the end of the pattern.
  EXPECT_TRUE(GlobMatch("x[ab", "xa"));
  EXPECT_FALSE(GlobMatch("x[ab", "xc"));
}

TEST(GlobTest, BytesAreBytes) {
  EXPECT_TRUE(GlobMatch("caf?", "caf\xc3"));
  EXPECT_TRUE(GlobMatch("caf??", "caf\xc3\xa9"));
  EXPECT_TRUE(GlobMatch(std::string("a\0*", 3), std::string("a\0zz", 4)));
  EXPECT_TRUE(GlobMatch("[\x80-\xff]", "\xc3"));
}

// Many stars against a long text that fails at its end: a backtracking matcher takes
// exponential time here; this one is linear in pattern times text.
TEST(GlobTest, AdversarialPatternStaysFast) {
  const std::string pattern = std::string(40, '*') + "a*a*a*a*a*a*a*a*a*a*b";
  const std::string text(100000, 'a');
  EXPECT_FALSE(GlobMatch(pattern, text));
}

}  // namespace
}  // namespace bridge::auth
