#include "clients/cli/command_line.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace bridgectl {
namespace {

absl::StatusOr<Options> Parse(std::vector<std::string> args, const char* env_addr = nullptr,
                              const char* env_token = nullptr) {
  return ParseCommandLine(args, env_addr, env_token);
}

TEST(CommandLineTest, SubscribeTakesChannelsAndRepeatedPatterns) {
  absl::StatusOr<Options> o =
      Parse({"subscribe", "a", "--pattern", "n.*", "b", "-p=x?", "--json", "--count=3"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->command, Command::kSubscribe);
  EXPECT_EQ(o->channels, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(o->patterns, (std::vector<std::string>{"n.*", "x?"}));
  EXPECT_TRUE(o->json);
  EXPECT_EQ(o->count, 3);
  EXPECT_FALSE(o->reconnect);
}

TEST(CommandLineTest, PatternsAloneAreEnough) {
  absl::StatusOr<Options> o = Parse({"subscribe", "-p", "*"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->channels.empty());
}

TEST(CommandLineTest, PublishMessageIsOptional) {
  absl::StatusOr<Options> with = Parse({"publish", "a", "hello world"});
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_EQ(with->channel, "a");
  EXPECT_EQ(with->message, "hello world");
  absl::StatusOr<Options> without = Parse({"publish", "a"});
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_FALSE(without->message.has_value());
}

TEST(CommandLineTest, DoubleDashEndsOptions) {
  absl::StatusOr<Options> o = Parse({"publish", "--", "a", "--not-a-flag"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->message, "--not-a-flag");
}

TEST(CommandLineTest, AddrFlagWinsOverEnvironment) {
  EXPECT_EQ(Parse({"health"})->addr, "localhost:50051");
  EXPECT_EQ(Parse({"health"}, "env:1")->addr, "env:1");
  EXPECT_EQ(Parse({"health", "--addr", "flag:2"}, "env:1")->addr, "flag:2");
}

TEST(CommandLineTest, TokenFlagOnEveryCommand) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"subscribe", "a", "--token", "s3cret-token-0123"},
           {"publish", "a", "b", "--token=s3cret-token-0123"},
           {"health", "--token", "s3cret-token-0123"},
       }) {
    absl::StatusOr<Options> o = Parse(args);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->token, "s3cret-token-0123") << args.front();
  }
  // None given, none sent.
  EXPECT_EQ(Parse({"subscribe", "a"})->token, "");
}

TEST(CommandLineTest, TokenFlagWinsOverEnvironment) {
  EXPECT_EQ(Parse({"subscribe", "a"}, nullptr, "from-env-0123456789")->token,
            "from-env-0123456789");
  // An empty $BRIDGE_TOKEN is as good as unset, as for $BRIDGE_ADDR.
  EXPECT_EQ(Parse({"subscribe", "a"}, nullptr, "")->token, "");
  EXPECT_EQ(
      Parse({"subscribe", "a", "--token", "from-flag-0123456789"}, nullptr, "from-env-0123456789")
          ->token,
      "from-flag-0123456789");
  // $BRIDGE_ADDR and $BRIDGE_TOKEN do not get in each other's way.
  absl::StatusOr<Options> both = Parse({"publish", "a", "b"}, "env:1", "from-env-0123456789");
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->addr, "env:1");
  EXPECT_EQ(both->token, "from-env-0123456789");
  // A $BRIDGE_TOKEN that could not be sent is checked only when --token does not replace it.
  EXPECT_TRUE(Parse({"health", "--token", "good-token-0123456"}, nullptr, "bad token").ok());
}

TEST(CommandLineTest, TokenErrorsAreUsageErrorsThatNeverQuoteIt) {
  struct Case {
    std::vector<std::string> args;
    const char* env_token;
  };
  for (const Case& c : std::vector<Case>{
           {{"subscribe", "a", "--token"}, nullptr},              // missing value
           {{"subscribe", "a", "--token"}, "env-token-0123456"},  // the env is no value
           {{"publish", "a", "b", "--token="}, nullptr},
           {{"publish", "a", "b", "--token", ""}, nullptr},
           {{"health", "--token", "s3cret with-space"}, nullptr},
           {{"health", "--token", "s3cret\x01"}, nullptr},
           {{"health", "--token", "s3cret\xc3\xa9"}, nullptr},
           {{"health"}, "s3cret\nnewline"},
           {{"health"}, "s3cret with-space"},
       }) {
    absl::StatusOr<Options> o = Parse(c.args, nullptr, c.env_token);
    ASSERT_FALSE(o.ok()) << "accepted: " << c.args.back();
    // The parser's errors become exit status 2 in main (kExitUsage).
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(o.status().message());
    EXPECT_NE(message.find("--help"), std::string::npos) << message;
    EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
    EXPECT_EQ(message.find("env-token"), std::string::npos) << message;
  }
}

TEST(CommandLineTest, UsageDocumentsTheToken) {
  const std::string usage = Usage();
  EXPECT_NE(usage.find("--token TOKEN"), std::string::npos);
  EXPECT_NE(usage.find("$BRIDGE_TOKEN"), std::string::npos);
  EXPECT_NE(usage.find("authorization: Bearer"), std::string::npos);
}

TEST(CommandLineTest, Timeouts) {
  EXPECT_EQ(Parse({"health", "--timeout", "500ms"})->timeout, absl::Milliseconds(500));
  EXPECT_EQ(Parse({"health", "--timeout=2"})->timeout, absl::Seconds(2));
  EXPECT_FALSE(Parse({"health", "--timeout", "0"}).ok());
  EXPECT_FALSE(Parse({"health", "--timeout", "soon"}).ok());
}

TEST(CommandLineTest, HealthWatch) {
  absl::StatusOr<Options> o = Parse({"health", "--watch", "--service", "bridge.v1.Bridge"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->command, Command::kHealth);
  EXPECT_TRUE(o->watch);
  EXPECT_FALSE(o->wait);
  EXPECT_EQ(o->service, "bridge.v1.Bridge");
}

TEST(CommandLineTest, HelpWinsEverywhere) {
  EXPECT_EQ(Parse({"--help"})->command, Command::kHelp);
  EXPECT_EQ(Parse({"subscribe", "-h"})->command, Command::kHelp);
  EXPECT_EQ(Parse({"help"})->command, Command::kHelp);
}

TEST(CommandLineTest, PublishTakesAnIdempotencyKey) {
  absl::StatusOr<Options> o = Parse({"publish", "a", "hi", "--key", "order-7"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->key, "order-7");
  EXPECT_EQ(Parse({"publish", "a", "hi"})->key, "");
}

TEST(CommandLineTest, HistoryTakesALimitAndAPosition) {
  absl::StatusOr<Options> latest = Parse({"history", "orders", "--limit", "10"});
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->command, Command::kHistory);
  EXPECT_EQ(latest->channel, "orders");
  EXPECT_EQ(latest->limit, 10u);
  EXPECT_FALSE(latest->since_offset.has_value());
  absl::StatusOr<Options> since = Parse({"history", "orders", "--since=5", "--epoch", "e1"});
  ASSERT_TRUE(since.ok()) << since.status();
  EXPECT_EQ(since->limit, 0u);
  EXPECT_EQ(since->since_offset, 5u);
  EXPECT_EQ(since->since_epoch, "e1");
}

TEST(CommandLineTest, UsageErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},
           {"subscribe"},
           {"publish"},
           {"publish", "a", "b", "c"},
           {"health", "extra"},
           {"frobnicate"},
           {"health", "--pattern", "x"},
           {"publish", "a", "--reconnect"},
           {"subscribe", "a", "--wait"},
           {"publish", "a", "b", "--watch"},
           {"health", "--wait", "--watch"},
           {"subscribe", "a", "--count", "-1"},
           {"subscribe", "a", "--json=yes"},
           {"subscribe", "a", "--addr"},
           {"subscribe", "a", "--bogus"},
           {"subscribe", "a", "--key", "k"},
           {"publish", "a", "--key", ""},
           {"publish", "a", "--key", std::string(257, 'k')},
           {"history"},
           {"history", "a", "b"},
           {"history", "a", "--since", "3"},
           {"history", "a", "--epoch", "e1"},
           {"history", "a", "--since", "x", "--epoch", "e1"},
           {"history", "a", "--limit", "-1"},
           {"subscribe", "a", "--limit", "3"},
           {"publish", "a", "b", "--since", "3", "--epoch", "e1"},
       }) {
    absl::StatusOr<Options> o = Parse(args);
    EXPECT_FALSE(o.ok()) << "accepted: " << args.size() << " args";
    if (!o.ok()) {
      EXPECT_NE(o.status().message().find("--help"), absl::string_view::npos);
    }
  }
}

}  // namespace
}  // namespace bridgectl
