#include "clients/cli/event_formatter.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace bridgectl {
namespace {

using bridge::v1::Event;
using nlohmann::json;

Event Message(const std::string& channel, const std::string& pattern, const std::string& payload,
              uint64_t seq) {
  Event e;
  e.mutable_message()->set_channel(channel);
  e.mutable_message()->set_pattern(pattern);
  e.mutable_message()->set_payload(payload);
  e.mutable_message()->set_seq(seq);
  return e;
}

TEST(EventFormatterTest, HumanForm) {
  const EventFormatter f(false);
  Event sub;
  sub.mutable_subscribed()->set_channel("news");
  EXPECT_EQ(f.Format(sub), "subscribed channel news");
  sub.mutable_subscribed()->set_pattern("news.*");
  EXPECT_EQ(f.Format(sub), "subscribed pattern news.*");
  EXPECT_EQ(f.Format(Message("news", "", "hello", 1)), "news #1: hello");
  EXPECT_EQ(f.Format(Message("news.eu", "news.*", "hi", 7)), "news.eu (news.*) #7: hi");
  Event gap;
  gap.mutable_gap()->set_channel("news");
  gap.mutable_gap()->set_reason("slow_consumer");
  gap.mutable_gap()->set_dropped(3);
  EXPECT_EQ(f.Format(gap), "gap channel news: slow_consumer, 3 dropped");
  gap.mutable_gap()->set_channel("");
  gap.mutable_gap()->set_pattern("n.*");
  gap.mutable_gap()->set_reason("redis_reconnect");
  gap.mutable_gap()->set_dropped(0);
  EXPECT_EQ(f.Format(gap), "gap pattern n.*: redis_reconnect");
  EXPECT_EQ(f.Format(Event()), "unknown event (bridgectl is older than the server)");
}

TEST(EventFormatterTest, HumanFormKeepsOneEventPerLine) {
  EXPECT_EQ(EventFormatter::Printable("a\nb\tc\\d\r"), "a\\nb\\tc\\\\d\\r");
  EXPECT_EQ(EventFormatter::Printable(std::string("\x00\x7f", 2)), "\\x00\\x7f");
  EXPECT_EQ(EventFormatter::Printable("héllo ✓ 🙂"), "héllo ✓ 🙂");
  EXPECT_EQ(EventFormatter::Printable("bad \xff\xc3"), "bad \\xff\\xc3");
}

TEST(EventFormatterTest, Utf8Validation) {
  EXPECT_TRUE(EventFormatter::IsUtf8(""));
  EXPECT_TRUE(EventFormatter::IsUtf8("plain ✓ 🙂"));
  EXPECT_FALSE(EventFormatter::IsUtf8("\xff"));
  EXPECT_FALSE(EventFormatter::IsUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(EventFormatter::IsUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(EventFormatter::IsUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(EventFormatter::IsUtf8("\xe2\x9c"));          // cut short
}

TEST(EventFormatterTest, JsonFormMatchesTheWebSocketProtocol) {
  const EventFormatter f(true);
  EXPECT_EQ(json::parse(f.Format(Message("a", "", "hi \"x\"\n", 2))),
            (json{{"op", "message"}, {"channel", "a"}, {"seq", 2}, {"data", "hi \"x\"\n"}}));
  EXPECT_EQ(json::parse(f.Format(Message("a.b", "a.*", std::string("\0\xff", 2), 1))),
            (json{{"op", "message"},
                  {"channel", "a.b"},
                  {"pattern", "a.*"},
                  {"seq", 1},
                  {"data_b64", "AP8="}}));
  Event gap;
  gap.mutable_gap()->set_pattern("a.*");
  gap.mutable_gap()->set_reason("slow_consumer");
  gap.mutable_gap()->set_dropped(5);
  EXPECT_EQ(json::parse(f.Format(gap)),
            (json{{"op", "gap"}, {"pattern", "a.*"}, {"reason", "slow_consumer"}, {"dropped", 5}}));
  EXPECT_EQ(json::parse(f.Published("a", 2)),
            (json{{"op", "published"}, {"channel", "a"}, {"receivers", 2}}));
  EXPECT_EQ(json::parse(f.Published("a", 0, true)),
            (json{{"op", "published"}, {"channel", "a"}, {"receivers", 0}, {"duplicate", true}}));
  EXPECT_EQ(json::parse(f.Health("", "SERVING")), (json{{"service", ""}, {"status", "SERVING"}}));
  // A channel name that is not UTF-8 does not break the line.
  EXPECT_NO_THROW(json::parse(f.Format(Message("\xff", "", "x", 1))));
}

}  // namespace
}  // namespace bridgectl
