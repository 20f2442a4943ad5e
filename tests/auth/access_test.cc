#include "bridge/auth/access.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bridge/auth/access_list.h"
#include "bridge/auth/grant.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bridge::auth {
namespace {

using ::testing::HasSubstr;

constexpr char kTwoClients[] = R"({"clients": [
  {"name": "ui", "token": "ui-token-0123456789", "subscribe": ["prices.*", "news"]},
  {"name": "pricer", "token": "pricer-token-0123456789", "subscribe": ["*"],
   "publish": ["prices.*"]}
]})";

TEST(GrantTest, ChannelsByGlobPatternsLiterally) {
  const Grant g{"ui", {"prices.*", "news"}, {"prices.eu"}};
  EXPECT_TRUE(g.MaySubscribeChannel("prices.eu"));
  EXPECT_TRUE(g.MaySubscribeChannel("news"));
  EXPECT_FALSE(g.MaySubscribeChannel("news.sport"));
  EXPECT_FALSE(g.MaySubscribeChannel("orders"));
  // A pattern is allowed only as written in the grant: "prices.eu*" matches channels the
  // grant allows, but "p*" would reach "payroll" too, and no pattern can be checked
  // against another in general.
  EXPECT_TRUE(g.MaySubscribePattern("prices.*"));
  EXPECT_FALSE(g.MaySubscribePattern("p*"));
  EXPECT_FALSE(g.MaySubscribePattern("*"));
  EXPECT_TRUE(g.MayPublish("prices.eu"));
  EXPECT_FALSE(g.MayPublish("prices.us"));
  const Grant& all = Grant::Everything();
  EXPECT_TRUE(all.MaySubscribePattern("anything*"));
  EXPECT_TRUE(all.MaySubscribeChannel("x"));
  EXPECT_TRUE(all.MayPublish("x"));
}

TEST(GrantTest, CheckSubscribeNamesTheFirstTopicRefused) {
  const Grant g{"ui", {"prices.*", "news"}, {}};
  EXPECT_TRUE(g.CheckSubscribeChannel("prices.eu").ok());
  EXPECT_TRUE(g.CheckSubscribePattern("prices.*").ok());
  const absl::Status channel = g.CheckSubscribeChannel("orders");
  EXPECT_EQ(channel.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(channel.message(), "this token may not subscribe to channel orders");
  EXPECT_EQ(g.CheckSubscribePattern("p*").message(), "this token may not subscribe to pattern p*");
  const std::vector<std::string> ok_channels = {"news", "prices.us"};
  const std::vector<std::string> bad_channels = {"news", "orders", "payroll"};
  const std::vector<std::string> bad_patterns = {"prices.*", "n*"};
  const std::vector<std::string> none;
  EXPECT_TRUE(g.CheckSubscribe(ok_channels, none).ok());
  EXPECT_EQ(g.CheckSubscribe(bad_channels, bad_patterns).message(),
            "this token may not subscribe to channel orders");
  EXPECT_EQ(g.CheckSubscribe(ok_channels, bad_patterns).message(),
            "this token may not subscribe to pattern n*");
  EXPECT_TRUE(Grant::Everything().CheckSubscribe(bad_channels, bad_patterns).ok());
}

TEST(AccessListTest, FindsEachClientByItsTokenOnly) {
  auto list = AccessList::Parse(kTwoClients);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ((*list)->size(), 2u);
  auto ui = (*list)->Find("ui-token-0123456789");
  ASSERT_NE(ui, nullptr);
  EXPECT_EQ(ui->name, "ui");
  EXPECT_THAT(ui->subscribe, ::testing::ElementsAre("prices.*", "news"));
  EXPECT_TRUE(ui->publish.empty());
  auto pricer = (*list)->Find("pricer-token-0123456789");
  ASSERT_NE(pricer, nullptr);
  EXPECT_EQ(pricer->name, "pricer");
  for (const char* wrong :
       {"", "ui-token-012345678", "ui-token-01234567890", "UI-TOKEN-0123456789", "pricer"}) {
    EXPECT_EQ((*list)->Find(wrong), nullptr) << wrong;
  }
}

TEST(AccessListTest, EveryMistakeIsAnErrorThatSaysWhere) {
  struct Case {
    const char* json;
    const char* says;
  };
  const Case cases[] = {
      {"not json", "not JSON"},
      {"[]", "not a JSON object"},
      {"{}", "\"clients\" is missing"},
      {R"({"clients": [], "extra": 1})", "unknown key \"extra\""},
      {R"({"clients": [7]})", "clients[0]: not an object"},
      {R"({"clients": [{"token": "0123456789abcdef"}]})", "\"name\" is missing"},
      {R"({"clients": [{"name": "a"}]})", "clients[0] (a): \"token\" is missing"},
      {R"({"clients": [{"name": "a", "token": "short"}]})", "shorter than 16 bytes"},
      {R"({"clients": [{"name": "a", "token": "0123456789 abcdef"}]})", "a space"},
      {R"({"clients": [{"name": "a", "token": "0123456789abcdef", "subscribe": "x"}]})",
       "\"subscribe\" is not a list"},
      {R"({"clients": [{"name": "a", "token": "0123456789abcdef", "publish": [""]}]})",
       "\"publish\" holds something"},
      {R"({"clients": [{"name": "a", "token": "0123456789abcdef", "subscibe": ["x"]}]})",
       "unknown key \"subscibe\""},
      {R"({"clients": [{"name": "a", "token": "0123456789abcdef"},
                       {"name": "a", "token": "0123456789abcdeg"}]})",
       "clients[1] (a): a second client of this name"},
      {R"({"clients": [{"name": "a", "token": "0123456789abcdef"},
                       {"name": "b", "token": "0123456789abcdef"}]})",
       "clients[1] (b): the token of another client too"},
  };
  for (const Case& c : cases) {
    auto list = AccessList::Parse(c.json);
    ASSERT_FALSE(list.ok()) << c.json;
    EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(list.status().message()), HasSubstr(c.says)) << c.json;
  }
  // A glob the matcher would read other than as written, a key given twice (which the
  // JSON parser would resolve to the last one), and a token no header can carry.
  const Case more[] = {
      {R"({"clients": [{"name": "a", "token": "0123456789abcdef", "subscribe": ["x", "news.["]}]})",
       "clients[0] (a): \"subscribe\"[1] \"news.[\": a [ is never closed"},
      {R"({"clients": [{"name": "a", "token": "0123456789abcdef", "publish": ["x\\"]}]})",
       "clients[0] (a): \"publish\"[0] \"x\\\": a lone \\ ends it"},
      {R"({"clients": [{"name": "a", "token": "0123456789abcdef"},
                       {"name": "b", "token": "0123456789abcdeg", "subscribe": ["x"],
                        "subscribe": ["*"]}]})",
       "clients[1]: key \"subscribe\" given twice"},
      {R"({"clients": [], "clients": [{"name": "a", "token": "0123456789abcdef"}]})",
       "access file: key \"clients\" given twice"},
      {"{\"clients\": [{\"name\": \"a\", \"token\": \"0123456789abcd\u00e9f\"}]}",
       "clients[0] (a): the token holds a byte that is not ASCII"},
  };
  for (const Case& c : more) {
    auto list = AccessList::Parse(c.json);
    ASSERT_FALSE(list.ok()) << c.json;
    EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(list.status().message()), HasSubstr(c.says)) << c.json;
  }
  // Same keys in different objects are no duplicates.
  auto two = AccessList::Parse(kTwoClients);
  ASSERT_TRUE(two.ok()) << two.status();
  auto empty = AccessList::Parse(R"({"clients": []})");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ((*empty)->Find("anything-at-all-0123"), nullptr);
}

TEST(AccessTest, WithoutAFileEveryoneMayDoEverything) {
  Access access("");
  EXPECT_FALSE(access.enabled());
  ASSERT_TRUE(access.Load().ok());
  for (auto token : {std::optional<std::string_view>(), std::optional<std::string_view>("x")}) {
    auto grant = access.Authenticate(token);
    ASSERT_TRUE(grant.ok()) << grant.status();
    EXPECT_TRUE((*grant)->MaySubscribePattern("*"));
    EXPECT_TRUE((*grant)->MayPublish("any"));
  }
}

TEST(AccessTest, TokensFromTheFileAndReloadKeepsTheOldRulesOnError) {
  namespace fs = std::filesystem;
  const fs::path path = fs::temp_directory_path() / absl::StrCat("bridge-access-", getpid());
  std::ofstream(path) << kTwoClients;
  Access access(path.string());
  ASSERT_TRUE(access.Load().ok());
  auto missing = access.Authenticate(std::nullopt);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Authenticate("wrong-token-0123456789").status().code(),
            absl::StatusCode::kUnauthenticated);
  auto ui = access.Authenticate("ui-token-0123456789");
  ASSERT_TRUE(ui.ok()) << ui.status();
  EXPECT_EQ((*ui)->name, "ui");

  // A broken file is refused, with its path, and the rules in force stay.
  std::ofstream(path) << R"({"clients": [{"name": "ui"}]})";
  absl::Status st = access.Load();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr(path.string()));
  EXPECT_TRUE(access.Authenticate("ui-token-0123456789").ok());

  // A good one replaces them; a grant taken before keeps what it said.
  std::ofstream(path) << R"({"clients": [{"name": "ui2", "token": "second-token-0123456789"}]})";
  ASSERT_TRUE(access.Load().ok());
  EXPECT_FALSE(access.Authenticate("ui-token-0123456789").ok());
  EXPECT_TRUE(access.Authenticate("second-token-0123456789").ok());
  EXPECT_EQ((*ui)->name, "ui");
  EXPECT_TRUE((*ui)->MaySubscribeChannel("news"));

  fs::remove(path);
  EXPECT_EQ(access.Load().code(), absl::StatusCode::kNotFound);
}

TEST(AccessTest, BearerTokens) {
  EXPECT_EQ(Access::BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(Access::BearerToken("bearer   abc  "), "abc");
  EXPECT_EQ(Access::BearerToken("BEARER abc"), "abc");
  EXPECT_EQ(Access::BearerToken("Basic abc"), std::nullopt);
  EXPECT_EQ(Access::BearerToken("Bearer"), std::nullopt);
  EXPECT_EQ(Access::BearerToken("Bearerabc"), std::nullopt);
  EXPECT_EQ(Access::BearerToken(""), std::nullopt);
}

}  // namespace
}  // namespace bridge::auth
