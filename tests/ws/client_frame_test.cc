#include "bridge/ws/client_frame.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bridge::ws {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

ClientFrame Parse(std::string_view text) { return ParseClientFrame(text, ClientFrameLimits{}); }

// The code of a refused frame, or "" for an accepted one.
std::string CodeOf(const ClientFrame& frame) {
  const auto* error = std::get_if<ClientError>(&frame);
  return error == nullptr ? "" : std::string(ErrorCodeName(error->code));
}

TEST(ClientFrameTest, Subscribe) {
  const ClientFrame f = Parse(R"({"op":"subscribe","channels":["a","b"],"patterns":["news.*"]})");
  const auto* s = std::get_if<SubscribeCommand>(&f);
  ASSERT_NE(s, nullptr) << CodeOf(f);
  EXPECT_THAT(s->channels, ElementsAre("a", "b"));
  EXPECT_THAT(s->patterns, ElementsAre("news.*"));
}

TEST(ClientFrameTest, SubscribePatternsOnlyAndUnknownFieldsIgnored) {
  const ClientFrame f = Parse(R"({"op":"subscribe","patterns":["x*"],"future":{"a":1}})");
  const auto* s = std::get_if<SubscribeCommand>(&f);
  ASSERT_NE(s, nullptr) << CodeOf(f);
  EXPECT_THAT(s->channels, IsEmpty());
  EXPECT_THAT(s->patterns, ElementsAre("x*"));
}

TEST(ClientFrameTest, SubscribeWithResumePositions) {
  const ClientFrame f = Parse(
      R"({"op":"subscribe","channels":["a"],"resume":{"d.1":{"offset":7,"epoch":"e1"},"d.2":{}}})");
  const auto* s = std::get_if<SubscribeCommand>(&f);
  ASSERT_NE(s, nullptr) << CodeOf(f);
  ASSERT_EQ(s->resume.size(), 2u);
  EXPECT_EQ(s->resume[0].first, "d.1");
  EXPECT_EQ(s->resume[0].second, (hub::StreamPosition{7, "e1"}));
  EXPECT_EQ(s->resume[1].second, (hub::StreamPosition{0, ""}));
  // "resume" alone is enough to subscribe.
  EXPECT_EQ(CodeOf(Parse(R"({"op":"subscribe","resume":{"d":{"offset":1,"epoch":"e"}}})")), "");
  for (const char* bad : {R"({"op":"subscribe","resume":["d"]})",
                          R"({"op":"subscribe","resume":{"d":{"offset":-1}}})",
                          R"({"op":"subscribe","resume":{"d":{"offset":1.5}}})",
                          R"({"op":"subscribe","resume":{"d":{"epoch":7}}})",
                          R"({"op":"subscribe","resume":{"d":7}})"}) {
    EXPECT_EQ(CodeOf(Parse(bad)), "bad_field") << bad;
  }
  EXPECT_EQ(CodeOf(Parse(R"({"op":"subscribe","resume":{"":{"offset":1}}})")), "bad_channel");
  ClientFrameLimits two;
  two.max_names = 2;
  EXPECT_EQ(CodeOf(ParseClientFrame(
                R"({"op":"subscribe","channels":["a","b"],"resume":{"c":{"offset":1}}})", two)),
            "too_many_subscriptions");
}

TEST(ClientFrameTest, History) {
  const ClientFrame f = Parse(
      R"({"op":"history","channel":"d","limit":5,"since":{"offset":3,"epoch":"e"},"id":"r"})");
  const auto* h = std::get_if<HistoryCommand>(&f);
  ASSERT_NE(h, nullptr) << CodeOf(f);
  EXPECT_EQ(h->channel, "d");
  EXPECT_EQ(h->limit, 5u);
  ASSERT_TRUE(h->since.has_value());
  EXPECT_EQ(*h->since, (hub::StreamPosition{3, "e"}));
  EXPECT_EQ(h->id, "r");
  const ClientFrame latest = Parse(R"({"op":"history","channel":"d"})");
  ASSERT_NE(std::get_if<HistoryCommand>(&latest), nullptr);
  EXPECT_FALSE(std::get<HistoryCommand>(latest).since.has_value());
  const ClientFrame bad = Parse(R"({"op":"history","channel":"d","limit":"all"})");
  EXPECT_EQ(CodeOf(bad), "bad_field");
  EXPECT_TRUE(std::get<ClientError>(bad).history);
  EXPECT_EQ(CodeOf(Parse(R"({"op":"history"})")), "bad_field");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"history","channel":""})")), "bad_channel");
}

TEST(ClientFrameTest, Unsubscribe) {
  const ClientFrame f = Parse(R"({"op":"unsubscribe","channels":["a"]})");
  const auto* s = std::get_if<UnsubscribeCommand>(&f);
  ASSERT_NE(s, nullptr) << CodeOf(f);
  EXPECT_THAT(s->channels, ElementsAre("a"));
}

TEST(ClientFrameTest, PublishText) {
  const ClientFrame f = Parse(R"({"op":"publish","channel":"a","data":"h\u00e9llo\n"})");
  const auto* p = std::get_if<PublishCommand>(&f);
  ASSERT_NE(p, nullptr) << CodeOf(f);
  EXPECT_EQ(p->channel, "a");
  EXPECT_EQ(p->payload, "h\xC3\xA9llo\n");
}

TEST(ClientFrameTest, PublishBase64) {
  const ClientFrame f = Parse(R"({"op":"publish","channel":"a","data_b64":"AP8="})");
  const auto* p = std::get_if<PublishCommand>(&f);
  ASSERT_NE(p, nullptr) << CodeOf(f);
  EXPECT_EQ(p->payload, std::string("\x00\xff", 2));
}

TEST(ClientFrameTest, PublishIdempotencyKey) {
  ClientFrame f = Parse(R"({"op":"publish","channel":"a","data":"x","idempotency_key":"k-1"})");
  const auto* p = std::get_if<PublishCommand>(&f);
  ASSERT_NE(p, nullptr) << CodeOf(f);
  EXPECT_EQ(p->idempotency_key, "k-1");
  f = Parse(R"({"op":"publish","channel":"a","data":"x","idempotency_key":null})");
  p = std::get_if<PublishCommand>(&f);
  ASSERT_NE(p, nullptr) << CodeOf(f);
  EXPECT_EQ(p->idempotency_key, "");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"publish","channel":"a","data":"x","idempotency_key":1})")),
            "bad_field");
  const std::string long_key(257, 'k');
  EXPECT_EQ(CodeOf(Parse(R"({"op":"publish","channel":"a","data":"x","idempotency_key":")" +
                         long_key + "\"}")),
            "bad_field");
}

TEST(ClientFrameTest, Ping) {
  EXPECT_TRUE(std::holds_alternative<PingCommand>(Parse(R"({"op":"ping"})")));
}

TEST(ClientFrameTest, BadJson) {
  EXPECT_EQ(CodeOf(Parse("")), "bad_json");
  EXPECT_EQ(CodeOf(Parse("{")), "bad_json");
  EXPECT_EQ(CodeOf(Parse("hello")), "bad_json");
  EXPECT_EQ(CodeOf(Parse(R"(["op","ping"])")), "bad_json");
  EXPECT_EQ(CodeOf(Parse("42")), "bad_json");
  EXPECT_EQ(CodeOf(Parse("{\"op\":\"ping\",\"x\":\"\xff\"}")), "bad_json");  // not UTF-8
  EXPECT_EQ(CodeOf(Parse(std::string(10000, '[') + std::string(10000, ']'))), "bad_json");
}

TEST(ClientFrameTest, UnknownOp) {
  EXPECT_EQ(CodeOf(Parse(R"({"channels":["a"]})")), "unknown_op");
  EXPECT_EQ(CodeOf(Parse(R"({"op":7})")), "unknown_op");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"subscribe!"})")), "unknown_op");
}

TEST(ClientFrameTest, BadField) {
  EXPECT_EQ(CodeOf(Parse(R"({"op":"subscribe"})")), "bad_field");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"subscribe","channels":[]})")), "bad_field");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"subscribe","channels":"a"})")), "bad_field");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"subscribe","channels":[1]})")), "bad_field");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"subscribe","patterns":[null]})")), "bad_field");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"publish","data":"x"})")), "bad_field");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"publish","channel":["a"],"data":"x"})")), "bad_field");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"publish","channel":"a"})")), "bad_field");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"publish","channel":"a","data":1})")), "bad_field");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"publish","channel":"a","data":"x","data_b64":"eA=="})")),
            "bad_field");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"publish","channel":"a","data_b64":"!!"})")), "bad_field");
}

TEST(ClientFrameTest, BadChannel) {
  EXPECT_EQ(CodeOf(Parse(R"({"op":"subscribe","channels":[""]})")), "bad_channel");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"publish","channel":"","data":"x"})")), "bad_channel");
  const std::string long_name(257, 'c');
  EXPECT_EQ(CodeOf(Parse(R"({"op":"subscribe","channels":[")" + long_name + "\"]}")),
            "bad_channel");
  EXPECT_EQ(CodeOf(Parse(R"({"op":"subscribe","patterns":[")" + long_name + "\"]}")),
            "bad_channel");
}

// A refused publish is marked as one: its error answers the publish, in order.
TEST(ClientFrameTest, RefusedPublishIsMarked) {
  auto publish_error = [](std::string_view text) {
    const ClientFrame f = Parse(text);
    const auto* e = std::get_if<ClientError>(&f);
    return e != nullptr && e->publish;
  };
  EXPECT_TRUE(publish_error(R"({"op":"publish","channel":"","data":"x"})"));
  EXPECT_TRUE(publish_error(R"({"op":"publish","channel":7,"data":"x"})"));
  EXPECT_TRUE(publish_error(R"({"op":"publish","channel":"a"})"));
  EXPECT_FALSE(publish_error(R"({"op":"subscribe","channels":[""]})"));
  EXPECT_FALSE(publish_error(R"({"op":"publish!"})"));
  EXPECT_FALSE(publish_error("not json"));
}

TEST(ClientFrameTest, TooManyNames) {
  ClientFrameLimits limits;
  limits.max_names = 2;
  EXPECT_EQ(CodeOf(ParseClientFrame(R"({"op":"subscribe","channels":["a","b","c"]})", limits)),
            "too_many_subscriptions");
  EXPECT_EQ(CodeOf(ParseClientFrame(R"({"op":"subscribe","channels":["a","b"],"patterns":["c"]})",
                                    limits)),
            "too_many_subscriptions");
  EXPECT_EQ(CodeOf(ParseClientFrame(R"({"op":"subscribe","channels":["a","b"]})", limits)), "");
}

}  // namespace
}  // namespace bridge::ws
