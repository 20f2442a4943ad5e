#include "bridge/ws/server_frame.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "bridge/hub/event.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace bridge::ws {
namespace {

using Json = nlohmann::json;

Json ParseOrDie(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << text;
  return j;
}

TEST(ServerFrameTest, TextMessage) {
  hub::Message m("news", "", "h\xC3\xA9llo \"w\" \\ \n\t\x01", 7);
  const std::string frame = MessageFrame(m);
  const Json j = ParseOrDie(frame);
  EXPECT_EQ(j["op"], "message");
  EXPECT_EQ(j["channel"], "news");
  EXPECT_FALSE(j.contains("pattern"));
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["data"], m.payload());
  EXPECT_FALSE(j.contains("data_b64"));
}

TEST(ServerFrameTest, BinaryMessageIsBase64) {
  const std::string payload("\x00\xff\xfe binary", 10);
  hub::Message m("bin", "b*", payload, 1);
  const Json j = ParseOrDie(MessageFrame(m));
  EXPECT_EQ(j["pattern"], "b*");
  EXPECT_FALSE(j.contains("data"));
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(j["data_b64"].get<std::string>(), &decoded));
  EXPECT_EQ(decoded, payload);
}

TEST(ServerFrameTest, EncodedOnceAndShared) {
  hub::Message m("a", "", "x", 1);
  int calls = 0;
  auto encode = [&](const hub::Message& msg) {
    ++calls;
    return MessageFrame(msg);
  };
  const std::string& first = m.Encoded<std::string>(kWsEncodingSlot, encode);
  const std::string& second = m.Encoded<std::string>(kWsEncodingSlot, encode);
  EXPECT_EQ(&first, &second);
  EXPECT_EQ(calls, 1);
}

TEST(ServerFrameTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

TEST(ServerFrameTest, InvalidNamesStayValidJson) {
  const Json j = ParseOrDie(SubscribedFrame(hub::Topic::Channel("a\xff\"b")));
  EXPECT_EQ(j["channel"], "a\xEF\xBF\xBD\"b");
}

TEST(ServerFrameTest, ControlFrames) {
  EXPECT_EQ(ParseOrDie(SubscribedFrame(hub::Topic::Pattern("p*")))["pattern"], "p*");
  EXPECT_EQ(ParseOrDie(UnsubscribedFrame(hub::Topic::Channel("c")))["op"], "unsubscribed");
  const Json gap = ParseOrDie(GapFrame(hub::Topic::Channel("c"), hub::kGapSlowConsumer, 3));
  EXPECT_EQ(gap["op"], "gap");
  EXPECT_EQ(gap["reason"], "slow_consumer");
  EXPECT_EQ(gap["dropped"], 3);
  const Json error = ParseOrDie(ErrorFrame(ErrorCode::kBadJson, "oops \"x\""));
  EXPECT_EQ(error["code"], "bad_json");
  EXPECT_EQ(error["message"], "oops \"x\"");
  EXPECT_FALSE(error.contains("request"));
  const Json answer = ParseOrDie(ErrorFrame(ErrorCode::kBadChannel, "empty", "publish"));
  EXPECT_EQ(answer["code"], "bad_channel");
  EXPECT_EQ(answer["request"], "publish");
  EXPECT_EQ(ParseOrDie(PongFrame())["op"], "pong");
  const Json published = ParseOrDie(PublishedFrame("c", hub::PublishResult{4, false, {}}));
  EXPECT_EQ(published["receivers"], 4);
  EXPECT_FALSE(published.contains("offset"));
  const Json durable =
      ParseOrDie(PublishedFrame("c", hub::PublishResult{0, true, hub::StreamPosition{9, "e1"}}));
  EXPECT_EQ(durable["receivers"], 0);
  EXPECT_EQ(durable["duplicate"], true);
  EXPECT_EQ(durable["offset"], 9);
  EXPECT_EQ(durable["epoch"], "e1");
}

TEST(ServerFrameTest, DurableMessagesCarryTheirPosition) {
  const Json live =
      ParseOrDie(MessageFrame(hub::Message("c", "", "hi", 3, hub::StreamPosition{12, "e"})));
  EXPECT_EQ(live["offset"], 12);
  EXPECT_EQ(live["epoch"], "e");
  EXPECT_FALSE(live.contains("recovered"));
  EXPECT_EQ(live["data"], "hi");
  const Json recovered = ParseOrDie(MessageFrame(
      hub::Message("c", "", std::string("\xff", 1), 0, hub::StreamPosition{5, "e"}, true)));
  EXPECT_EQ(recovered["recovered"], true);
  EXPECT_EQ(recovered["data_b64"], "/w==");
  const Json plain = ParseOrDie(MessageFrame(hub::Message("c", "", "hi", 3)));
  EXPECT_FALSE(plain.contains("offset"));
  EXPECT_FALSE(plain.contains("epoch"));

  hub::HistoryResult result;
  result.epoch = "e";
  result.top = 7;
  result.history_lost = true;
  result.lost = 2;
  result.messages.push_back(
      std::make_shared<const hub::Message>("c", "", "a", 0, hub::StreamPosition{6, "e"}, true));
  result.messages.push_back(
      std::make_shared<const hub::Message>("c", "", "b", 0, hub::StreamPosition{7, "e"}, true));
  const Json history = ParseOrDie(HistoryFrame("c", "r1", result));
  EXPECT_EQ(history["op"], "history");
  EXPECT_EQ(history["id"], "r1");
  EXPECT_EQ(history["offset"], 7);
  EXPECT_EQ(history["history_lost"], true);
  EXPECT_EQ(history["lost"], 2);
  ASSERT_EQ(history["messages"].size(), 2u);
  EXPECT_EQ(history["messages"][0]["offset"], 6);
  EXPECT_EQ(history["messages"][1]["data"], "b");
  EXPECT_FALSE(ParseOrDie(HistoryFrame("c", "", hub::HistoryResult{})).contains("id"));
}

TEST(ServerFrameTest, EveryByteRoundTrips) {
  std::string all;
  for (int c = 1; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  hub::Message m("c", "", all, 1);
  EXPECT_EQ(ParseOrDie(MessageFrame(m))["data"], all);
}

// RFC 6455, section 5.2: FIN|text, then the length in 7 bits, or 126 and 16 bits, or 127
// and 64 bits, big-endian; a server's frames carry no mask.
TEST(ServerFrameTest, WireHeaderForEachLengthForm) {
  auto header = [](size_t n) {
    const std::string frame = WireTextFrame(std::string(n, 'x'));
    EXPECT_EQ(frame.size() - n, n < 126 ? 2u : n <= 0xFFFF ? 4u : 10u) << n;
    EXPECT_EQ(frame.substr(frame.size() - n), std::string(n, 'x')) << n;
    return std::vector<unsigned char>(frame.begin(), frame.end() - static_cast<long>(n));
  };
  using Bytes = std::vector<unsigned char>;
  EXPECT_EQ(header(0), (Bytes{0x81, 0}));
  EXPECT_EQ(header(125), (Bytes{0x81, 125}));
  EXPECT_EQ(header(126), (Bytes{0x81, 126, 0, 126}));
  EXPECT_EQ(header(65535), (Bytes{0x81, 126, 0xFF, 0xFF}));
  EXPECT_EQ(header(65536), (Bytes{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(header(300000), (Bytes{0x81, 127, 0, 0, 0, 0, 0, 0x04, 0x93, 0xE0}));
}

TEST(ServerFrameTest, MessageWireFrameIsTheFramedJson) {
  hub::Message m("c", "", "hi", 7);
  EXPECT_EQ(MessageWireFrame(m), WireTextFrame(MessageFrame(m)));
}

}  // namespace
}  // namespace bridge::ws
