#include "bridge/auth/glob.h"

#include <random>
#include <string>
#include <string_view>

#include "absl/status/status.h"
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
  EXPECT_TRUE(GlobMatch("x[a-]", "x-"));
  EXPECT_TRUE(GlobMatch("x[a-]", "xa"));
  EXPECT_FALSE(GlobMatch("x[a-]", "xb"));
  // An unclosed set runs to the end of the pattern.
  EXPECT_TRUE(GlobMatch("x[ab", "xa"));
  EXPECT_FALSE(GlobMatch("x[ab", "xc"));
}

TEST(GlobTest, ValidateRefusesAnUnclosedSetAndATrailingBackslash) {
  for (const char* ok : {"news.*", "h[ae]llo", "h[^e]llo", "[\\]]", "x[a-]", "[a-\\]", "a\\*b",
                         "a\\\\", "[]", "\\["}) {
    EXPECT_TRUE(ValidateGlob(ok).ok()) << ok;
  }
  for (const char* bad : {"news.[", "x[ab", "[\\]", "[^", "a\\", "a\\\\\\", "[a-\\"}) {
    EXPECT_EQ(ValidateGlob(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(GlobMatch("[a-\\]x", "_x")) << "the ] after a range's \\ closes the set";
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

// A plain recursive matcher for `*`, `?`, `\x` and literals: slow, but obviously right.
bool Reference(std::string_view p, std::string_view t) {
  if (p.empty()) return t.empty();
  if (p[0] == '*') return Reference(p.substr(1), t) || (!t.empty() && Reference(p, t.substr(1)));
  if (t.empty()) return false;
  if (p[0] == '\\' && p.size() >= 2) return p[1] == t[0] && Reference(p.substr(2), t.substr(1));
  return (p[0] == '?' || p[0] == t[0]) && Reference(p.substr(1), t.substr(1));
}

// The star walk against the reference, on many random short patterns and texts; then
// every syntax byte at random, which checks nothing but that no input reads out of
// bounds (the sanitizer build runs this too).
TEST(GlobTest, AgreesWithARecursiveMatcherOnRandomInput) {
  std::mt19937 rng(20261127);
  auto random = [&](std::string_view alphabet, size_t max) {
    std::string out(std::uniform_int_distribution<size_t>(0, max)(rng), ' ');
    for (char& c : out) c = alphabet[rng() % alphabet.size()];
    return out;
  };
  for (int i = 0; i < 200000; ++i) {
    const std::string pattern = random("ab*?\\", 8), text = random("ab*?\\", 10);
    ASSERT_EQ(GlobMatch(pattern, text), Reference(pattern, text))
        << "pattern " << pattern << " text " << text;
  }
  int matched = 0;
  for (int i = 0; i < 200000; ++i) {
    matched += GlobMatch(random("ab*?[]^-\\", 12), random("ab]-^\\", 12)) ? 1 : 0;
  }
  EXPECT_GT(matched, 0);
}

}  // namespace
}  // namespace bridge::auth
