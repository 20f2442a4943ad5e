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

bridge::v1::PublishResponse Published(int64_t receivers, bool duplicate, uint64_t offset = 0,
                                      const std::string& epoch = "") {
  bridge::v1::PublishResponse r;
  r.set_receivers(receivers);
  r.set_duplicate(duplicate);
  r.set_offset(offset);
  r.set_epoch(epoch);
  return r;
}

Event Durable(const std::string& channel, const std::string& payload, uint64_t seq, uint64_t offset,
              bool recovered) {
  Event e = Message(channel, "", payload, seq);
  e.mutable_message()->set_offset(offset);
  e.mutable_message()->set_epoch("e1");
  e.mutable_message()->set_recovered(recovered);
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
  EXPECT_EQ(json::parse(f.Published("a", Published(2, false))),
            (json{{"op", "published"}, {"channel", "a"}, {"receivers", 2}}));
  EXPECT_EQ(json::parse(f.Published("a", Published(0, true))),
            (json{{"op", "published"}, {"channel", "a"}, {"receivers", 0}, {"duplicate", true}}));
  EXPECT_EQ(json::parse(f.Health("", "SERVING")), (json{{"service", ""}, {"status", "SERVING"}}));
  // A channel name that is not UTF-8 does not break the line.
  EXPECT_NO_THROW(json::parse(f.Format(Message("\xff", "", "x", 1))));
}

TEST(EventFormatterTest, DurableMessagesShowTheirPosition) {
  const EventFormatter human(false);
  EXPECT_EQ(human.Format(Durable("orders", "paid", 4, 17, false)),
            "orders #4 offset=17 epoch=e1: paid");
  // Recovered by a resume: no seq of this stream.
  EXPECT_EQ(human.Format(Durable("orders", "new", 0, 15, true)),
            "orders offset=15 epoch=e1 recovered: new");
  // Recovered by Bridge after its own Redis reconnect: a seq of the stream.
  EXPECT_EQ(human.Format(Durable("orders", "x", 9, 16, true)),
            "orders #9 offset=16 epoch=e1 recovered: x");
  Event via_pattern = Durable("orders.eu", "hi", 2, 3, false);
  via_pattern.mutable_message()->set_pattern("orders.*");
  EXPECT_EQ(human.Format(via_pattern), "orders.eu (orders.*) #2 offset=3 epoch=e1: hi");

  const EventFormatter f(true);
  EXPECT_EQ(json::parse(f.Format(Durable("orders", "paid", 4, 17, false))),
            (json{{"op", "message"},
                  {"channel", "orders"},
                  {"seq", 4},
                  {"offset", 17},
                  {"epoch", "e1"},
                  {"data", "paid"}}));
  EXPECT_EQ(json::parse(f.Format(Durable("orders", "new", 0, 15, true))),
            (json{{"op", "message"},
                  {"channel", "orders"},
                  {"seq", 0},
                  {"offset", 15},
                  {"epoch", "e1"},
                  {"recovered", true},
                  {"data", "new"}}));
  Event lost;
  lost.mutable_gap()->set_channel("orders");
  lost.mutable_gap()->set_reason("history_lost");
  lost.mutable_gap()->set_dropped(4);
  EXPECT_EQ(human.Format(lost), "gap channel orders: history_lost, 4 dropped");
}

TEST(EventFormatterTest, PublishedShowsTheOffsetOfADurableChannel) {
  const EventFormatter human(false);
  EXPECT_EQ(human.Published("a", Published(1, false)), "published to a: 1 receiver");
  EXPECT_EQ(human.Published("a", Published(2, false)), "published to a: 2 receivers");
  EXPECT_EQ(human.Published("orders", Published(1, false, 7, "e1")),
            "published to orders: 1 receiver (offset=7 epoch=e1)");
  EXPECT_EQ(human.Published("orders", Published(0, true, 7, "e1")),
            "already published to orders with this key: not sent again (offset=7 epoch=e1)");
  EXPECT_EQ(json::parse(EventFormatter(true).Published("orders", Published(1, false, 7, "e1"))),
            (json{{"op", "published"},
                  {"channel", "orders"},
                  {"receivers", 1},
                  {"offset", 7},
                  {"epoch", "e1"}}));
}

TEST(EventFormatterTest, History) {
  bridge::v1::HistoryResponse r;
  r.set_epoch("e1");
  r.set_offset(12);
  for (uint64_t offset : {11, 12}) {
    bridge::v1::Message* m = r.add_messages();
    m->set_offset(offset);
    m->set_epoch("e1");
    m->set_recovered(true);
    m->set_payload("m" + std::to_string(offset));
  }
  r.mutable_messages(1)->set_payload(std::string("\xff", 1));
  EXPECT_EQ(EventFormatter(false).History("orders", r),
            "history of orders: epoch e1, latest offset 12, 2 messages\n"
            "orders offset=11 epoch=e1: m11\n"
            "orders offset=12 epoch=e1: \\xff");
  EXPECT_EQ(json::parse(EventFormatter(true).History("orders", r)),
            (json{{"op", "history"},
                  {"channel", "orders"},
                  {"epoch", "e1"},
                  {"offset", 12},
                  {"messages",
                   {{{"offset", 11}, {"epoch", "e1"}, {"data", "m11"}},
                    {{"offset", 12}, {"epoch", "e1"}, {"data_b64", "/w=="}}}},
                  {"history_lost", false},
                  {"lost", 0}}));

  r.set_history_lost(true);
  r.set_lost(3);
  r.mutable_messages()->DeleteSubrange(1, 1);
  EXPECT_EQ(EventFormatter(false).History("orders", r),
            "history of orders: epoch e1, latest offset 12, 1 message\n"
            "gap channel orders: history_lost, 3 dropped\n"
            "orders offset=11 epoch=e1: m11");
  EXPECT_EQ(EventFormatter(false).History("orders", bridge::v1::HistoryResponse()),
            "history of orders: empty");
}

}  // namespace
}  // namespace bridgectl
