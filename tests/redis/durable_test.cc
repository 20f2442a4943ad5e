// Durable channels on one real redis-server: the library's keys, offsets, epochs,
// history, trimming, TTL, idempotency keys, the envelope, and the library's reload.

#include <hiredis/hiredis.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bridge/hub/durable_envelope.h"
#include "bridge/hub/history.h"
#include "bridge/redis/cluster_slot.h"
#include "bridge/redis/durable_script.h"
#include "bridge/redis/redis_upstream.h"
#include "gtest/gtest.h"
#include "tests/redis/durable_harness.h"
#include "tests/support/redis_server.h"

namespace bridge::redis {
namespace {

using ::bridge::hub::DurablePublish;
using ::bridge::hub::DurablePublished;
using ::bridge::hub::HistoryPage;
using ::bridge::hub::HistoryQuery;
using ::bridge::hub::Topic;
using ::bridge::redis::durable_harness::Answer;
using ::bridge::redis::durable_harness::DurableListener;
using ::bridge::redis::durable_harness::kDurableWait;
using ::bridge::testing::RedisServer;
using ::bridge::testing::WaitFor;

// -Wmissing-field-initializers refuses partial designated initializers: these build the
// requests.
DurablePublish Request(std::string channel, std::string payload, std::string key = "",
                       hub::HistoryPolicy policy = {}) {
  DurablePublish request;
  request.channel = std::move(channel);
  request.payload = std::move(payload);
  request.key = std::move(key);
  request.policy = policy;
  return request;
}

HistoryQuery Query(std::string channel, std::optional<uint64_t> after = std::nullopt,
                   size_t limit = 1000) {
  HistoryQuery query;
  query.channel = std::move(channel);
  query.after = after;
  query.limit = limit;
  return query;
}

hub::HistoryPolicy Policy(uint64_t max_len, absl::Duration ttl = absl::Hours(24)) {
  hub::HistoryPolicy policy;
  policy.max_len = max_len;
  policy.ttl = ttl;
  return policy;
}

TEST(DurableKeysTest, EveryKeySharesTheChannelsSlot) {
  for (const std::string& channel :
       std::vector<std::string>{"news", "{user1}.inbox", "a{user1}b", "a{b", "a{b}c{d}", "{a{b}c",
                                "caf\xc3\xa9", std::string("bin\0ary", 7)}) {
    absl::StatusOr<DurableKeys> keys = DurableKeysFor(channel);
    ASSERT_TRUE(keys.ok()) << channel << ": " << keys.status();
    EXPECT_EQ(KeySlot(keys->meta), KeySlot(channel)) << keys->meta;
    EXPECT_EQ(KeySlot(keys->stream), KeySlot(channel)) << keys->stream;
    absl::StatusOr<std::string> dedup = DurableIdempotencyKey(channel, "key}{1");
    ASSERT_TRUE(dedup.ok());
    EXPECT_EQ(KeySlot(*dedup), KeySlot(channel)) << *dedup;
  }
  EXPECT_EQ(DurableKeysFor("news")->meta, "bridge:meta:{news}:news");
  EXPECT_EQ(DurableKeysFor("{user1}.inbox")->stream, "bridge:stream:{user1}:{user1}.inbox");
  EXPECT_EQ(*DurableIdempotencyKey("news", "k"), "bridge:dkey:{news}:4:news:k");
}

TEST(DurableKeysTest, AChannelWhoseTagWouldHoldABraceIsRefused) {
  for (const char* channel : {"a}b", "{}x}", "}", "x{}y", "{}", ""}) {
    EXPECT_EQ(DurableKeysFor(channel).status().code(), absl::StatusCode::kInvalidArgument)
        << channel;
    EXPECT_EQ(DurablePublishCommand(Request(channel, "p"), false, absl::Minutes(1)).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(HistoryCommand(Query(channel)).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

// A reply as hiredis reads it from RESP `wire`.
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
std::unique_ptr<redisReply, ReplyFree> Read(const std::string& wire) {
  redisReader* reader = redisReaderCreate();
  redisReaderFeed(reader, wire.data(), wire.size());
  void* reply = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader, &reply), REDIS_OK);
  redisReaderFree(reader);
  return std::unique_ptr<redisReply, ReplyFree>(static_cast<redisReply*>(reply));
}

TEST(DurableRepliesTest, RepliesAreReadAndErrorsClassified) {
  absl::StatusOr<DurablePublished> published =
      ParseDurablePublishReply(*Read("*4\r\n:7\r\n$3\r\nabc\r\n:2\r\n:0\r\n"));
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(published->position.offset, 7u);
  EXPECT_EQ(published->position.epoch, "abc");
  EXPECT_EQ(published->receivers, 2);
  EXPECT_FALSE(published->duplicate);

  absl::StatusOr<HistoryPage> page =
      ParseHistoryReply(*Read("*4\r\n$3\r\nabc\r\n:9\r\n:9\r\n$2\r\nhi\r\n"));
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->epoch, "abc");
  EXPECT_EQ(page->top, 9u);
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_EQ(page->entries[0].offset, 9u);
  EXPECT_EQ(page->entries[0].payload, "hi");

  EXPECT_EQ(ParseDurablePublishReply(*Read("-NOPERM no\r\n")).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ParseDurablePublishReply(*Read("-OOM full\r\n")).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(ParseHistoryReply(*Read("-ERR Function not found\r\n")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(IsFunctionMissing("ERR Function not found"));
  EXPECT_EQ(ParseDurablePublishReply(*Read(":1\r\n")).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ParseHistoryReply(*Read("*3\r\n$0\r\n\r\n:0\r\n:1\r\n")).status().code(),
            absl::StatusCode::kInternal);
}

class DurableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  void TearDown() override {
    if (upstream_) upstream_->Stop();
    upstream_.reset();
    work_.reset();
    for (std::thread& t : threads_) t.join();
  }

  // Starts an upstream on `server` and waits for its connections.
  void Connect(const RedisServer& server,
               absl::Duration publish_timeout = RedisUpstreamOptions().publish_timeout) {
    RedisUpstreamOptions options;
    options.url = server.url();
    options.connect_timeout = absl::Seconds(2);
    options.backoff_initial = absl::Milliseconds(10);
    options.backoff_max = absl::Milliseconds(100);
    options.probe_interval = absl::ZeroDuration();
    options.publish_timeout = publish_timeout;
    absl::StatusOr<std::unique_ptr<RedisUpstream>> upstream = RedisUpstream::Create(options, io_);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = *std::move(upstream);
    upstream_->SetListener(&listener_);
    upstream_->Start();
    ASSERT_NE(listener_.AwaitConnected(), 0u);
    ASSERT_TRUE(WaitFor([&] { return upstream_->connected(); }, kDurableWait));
  }

  absl::StatusOr<DurablePublished> Publish(DurablePublish request) {
    Answer<DurablePublished> answer;
    upstream_->PublishDurable(std::move(request), answer.Callback());
    return answer.Await();
  }
  absl::StatusOr<DurablePublished> Publish(const std::string& channel, const std::string& payload,
                                           const std::string& key = "") {
    return Publish(Request(channel, payload, key));
  }

  absl::StatusOr<HistoryPage> Read(HistoryQuery query) {
    Answer<HistoryPage> answer;
    upstream_->ReadHistory(std::move(query), answer.Callback());
    return answer.Await();
  }

  static std::vector<uint64_t> Offsets(const HistoryPage& page) {
    std::vector<uint64_t> out;
    for (const auto& e : page.entries) out.push_back(e.offset);
    return out;
  }
  static std::vector<std::string> Payloads(const HistoryPage& page) {
    std::vector<std::string> out;
    for (const auto& e : page.entries) out.push_back(e.payload);
    return out;
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::vector<std::thread> threads_;
  DurableListener listener_;
  std::unique_ptr<RedisUpstream> upstream_;
};

TEST_F(DurableTest, OffsetsCountFromOneUnderOneEpoch) {
  RedisServer server;
  Connect(server);
  std::string epoch;
  for (uint64_t i = 1; i <= 5; ++i) {
    absl::StatusOr<DurablePublished> published = Publish("news", absl::StrCat("m", i));
    ASSERT_TRUE(published.ok()) << published.status();
    EXPECT_EQ(published->position.offset, i);
    EXPECT_FALSE(published->duplicate);
    EXPECT_EQ(published->receivers, 0);
    if (i == 1) epoch = published->position.epoch;
    EXPECT_EQ(published->position.epoch, epoch);
  }
  EXPECT_FALSE(epoch.empty());
  // Another channel counts on its own.
  EXPECT_EQ(Publish("other", "x")->position.offset, 1u);
  // Both keys carry the TTL.
  const DurableKeys keys = *DurableKeysFor("news");
  for (const std::string& key : {keys.meta, keys.stream}) {
    int64_t pttl = 0;
    ASSERT_TRUE(absl::SimpleAtoi(*server.Command({"PTTL", key}), &pttl));
    EXPECT_GT(pttl, 0) << key;
  }
}

TEST_F(DurableTest, HistoryGivesTheLatestOrWhatFollowsAnOffset) {
  RedisServer server;
  Connect(server);
  std::string epoch;
  for (int i = 1; i <= 10; ++i) epoch = Publish("news", absl::StrCat("m", i))->position.epoch;

  absl::StatusOr<HistoryPage> latest = Read(Query("news", std::nullopt, 3));
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->epoch, epoch);
  EXPECT_EQ(latest->top, 10u);
  EXPECT_EQ(Offsets(*latest), (std::vector<uint64_t>{8, 9, 10}));
  EXPECT_EQ(Payloads(*latest), (std::vector<std::string>{"m8", "m9", "m10"}));

  absl::StatusOr<HistoryPage> after = Read(Query("news", 4, 3));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(Offsets(*after), (std::vector<uint64_t>{5, 6, 7}));
  EXPECT_EQ(Payloads(*after), (std::vector<std::string>{"m5", "m6", "m7"}));

  EXPECT_EQ(Offsets(*Read(Query("news", 0))).size(), 10u);
  EXPECT_EQ(Offsets(*Read(Query("news", std::nullopt, SIZE_MAX))).size(), 10u);
  absl::StatusOr<HistoryPage> none = Read(Query("news", 10));
  EXPECT_TRUE(none->entries.empty());
  EXPECT_EQ(none->top, 10u);

  absl::StatusOr<HistoryPage> never = Read(Query("never"));
  ASSERT_TRUE(never.ok()) << never.status();
  EXPECT_EQ(never->epoch, "");
  EXPECT_EQ(never->top, 0u);
  EXPECT_TRUE(never->entries.empty());
}

TEST_F(DurableTest, HistoryIsTrimmedToAboutMaxLen) {
  RedisServer server;
  Connect(server);
  constexpr uint64_t kMaxLen = 10;
  constexpr uint64_t kPublished = 250;
  for (uint64_t i = 1; i <= kPublished; ++i) {
    ASSERT_TRUE(Publish(Request("news", absl::StrCat(i), "", Policy(kMaxLen))).ok());
  }
  absl::StatusOr<HistoryPage> page = Read(Query("news", 0));
  ASSERT_TRUE(page.ok()) << page.status();
  // MAXLEN ~ trims whole stream nodes (stream-node-max-entries, 100 by default).
  EXPECT_GE(page->entries.size(), kMaxLen);
  EXPECT_LE(page->entries.size(), kMaxLen + 100);
  // Contiguous up to the top.
  ASSERT_FALSE(page->entries.empty());
  EXPECT_EQ(page->entries.back().offset, kPublished);
  for (size_t i = 1; i < page->entries.size(); ++i) {
    EXPECT_EQ(page->entries[i].offset, page->entries[i - 1].offset + 1);
  }
  EXPECT_EQ(page->entries.front().payload, absl::StrCat(page->entries.front().offset));
}

TEST_F(DurableTest, AHistoryExpiredByItsTtlStartsANewEpochFromOne) {
  RedisServer server;
  Connect(server);
  const DurablePublish request = Request("news", "p", "", Policy(1000, absl::Milliseconds(100)));
  ASSERT_TRUE(Publish(request).ok());
  absl::StatusOr<DurablePublished> second = Publish(request);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->position.offset, 2u);

  const DurableKeys keys = *DurableKeysFor("news");
  ASSERT_TRUE(WaitFor(
      [&] {
        return *server.Command({"EXISTS", keys.meta, keys.stream}) == "0";
      },
      kDurableWait));
  absl::StatusOr<HistoryPage> gone = Read(Query("news"));
  EXPECT_EQ(gone->epoch, "");
  EXPECT_EQ(gone->top, 0u);

  absl::StatusOr<DurablePublished> renewed = Publish(request);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->position.offset, 1u);
  EXPECT_NE(renewed->position.epoch, second->position.epoch);
}

TEST_F(DurableTest, AKeyedRetryAnswersTheFirstPositionAndPublishesNothing) {
  RedisServer server;
  Connect(server);
  upstream_->Subscribe(Topic::Channel("news"), listener_.AwaitConnected());
  ASSERT_TRUE(listener_.AwaitSubscribed(Topic::Channel("news")));

  absl::StatusOr<DurablePublished> first = Publish("news", "once", "k1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->position.offset, 1u);
  EXPECT_EQ(first->receivers, 1);
  ASSERT_TRUE(Publish("news", "between").ok());

  absl::StatusOr<DurablePublished> retry = Publish("news", "once again", "k1");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->position, first->position);
  EXPECT_EQ(retry->receivers, 0);
  // The same key on another channel is another publish.
  EXPECT_FALSE(Publish("other", "once", "k1")->duplicate);

  // One more, so that a message the duplicate would have sent is in before it.
  ASSERT_TRUE(Publish("news", "last").ok());
  const auto received = listener_.AwaitMessages(3);
  ASSERT_EQ(received.size(), 3u);
  EXPECT_EQ(hub::OpenEnvelope(received[0].payload)->payload, "once");
  EXPECT_EQ(hub::OpenEnvelope(received[1].payload)->payload, "between");
  EXPECT_EQ(hub::OpenEnvelope(received[2].payload)->payload, "last");
  EXPECT_EQ(Offsets(*Read(Query("news"))), (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(DurableTest, APlainSubscriberGetsTheSealedEnvelope) {
  RedisServer server;
  Connect(server);
  upstream_->Subscribe(Topic::Channel("news"), listener_.AwaitConnected());
  ASSERT_TRUE(listener_.AwaitSubscribed(Topic::Channel("news")));

  constexpr char kBytes[] = "bin\0ary \x1f caf\xc3\xa9";
  const std::string payload(kBytes, sizeof(kBytes) - 1);  // the NUL inside included
  absl::StatusOr<DurablePublished> published = Publish("news", payload);
  ASSERT_TRUE(published.ok()) << published.status();
  const auto received = listener_.AwaitMessages(1);
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].channel, "news");
  EXPECT_EQ(received[0].payload,
            hub::SealEnvelope(published->position.epoch, published->position.offset, payload));
  std::optional<hub::OpenedEnvelope> opened = hub::OpenEnvelope(received[0].payload);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(opened->epoch, published->position.epoch);
  EXPECT_EQ(opened->offset, 1u);
  EXPECT_EQ(opened->payload, payload);
  EXPECT_EQ(Payloads(*Read(Query("news"))), (std::vector<std::string>{payload}));
}

TEST_F(DurableTest, AFlushedLibraryIsLoadedAgainAndTheCallRetried) {
  RedisServer server;
  Connect(server);
  ASSERT_TRUE(Publish("news", "1").ok());
  ASSERT_TRUE(server.Command({"FUNCTION", "FLUSH"}).ok());
  absl::StatusOr<DurablePublished> published = Publish("news", "2");
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(published->position.offset, 2u);

  ASSERT_TRUE(server.Command({"FUNCTION", "FLUSH"}).ok());
  absl::StatusOr<HistoryPage> page = Read(Query("news"));
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(Payloads(*page), (std::vector<std::string>{"1", "2"}));
}

TEST_F(DurableTest, ARedisRestartedWithoutPersistenceGivesANewEpoch) {
  RedisServer server;
  Connect(server);
  absl::StatusOr<DurablePublished> before = Publish("news", "1");
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(Publish("news", "2").ok());

  server.Restart();
  // The new publish connection loads the library before anything is asked of it.
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::string> libraries =
            server.Command({"FUNCTION", "LIST", "LIBRARYNAME", std::string(kDurableLibraryName)});
        return libraries.ok() && !libraries->empty();
      },
      kDurableWait));
  absl::StatusOr<DurablePublished> after = absl::UnavailableError("not yet");
  // Until the publish connection has noticed the restart, a publish may meet the old one.
  ASSERT_TRUE(WaitFor(
      [&] {
        after = Publish("news", "3");
        return after.ok();
      },
      kDurableWait));
  EXPECT_EQ(after->position.offset, 1u);
  EXPECT_NE(after->position.epoch, before->position.epoch);
}

// The hub's recovery reads as soon as the subscriber connection is back, which may be
// before the publish connection: a read waits for it (publish_timeout at most), where a
// publish fails at once.
TEST_F(DurableTest, AHistoryReadWaitsForThePublishConnection) {
  RedisServer server;
  Connect(server);
  ASSERT_TRUE(Publish("news", "1").ok());
  server.Kill();
  ASSERT_TRUE(WaitFor([&] { return !upstream_->connected(); }, kDurableWait));
  EXPECT_EQ(Publish("news", "2").status().code(), absl::StatusCode::kUnavailable);
  Answer<HistoryPage> read;
  upstream_->ReadHistory(Query("news"), read.Callback());
  server.Start();  // no persistence: the history is gone, but the read is answered
  absl::StatusOr<HistoryPage> page = read.Await();
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->entries.empty());
  EXPECT_EQ(read.calls(), 1);
}

TEST_F(DurableTest, AFrozenRedisTimesDurableCallsOutAndTheConnectionIsMadeAnew) {
  RedisServer server;
  Connect(server, absl::Milliseconds(300));
  ASSERT_TRUE(Publish("news", "1").ok());
  server.Pause();
  EXPECT_EQ(Publish("news", "2").status().code(), absl::StatusCode::kDeadlineExceeded);
  // The stalled connection was dropped; reads are bounded the same way.
  absl::StatusOr<HistoryPage> page = Read(Query("news"));
  EXPECT_TRUE(absl::IsDeadlineExceeded(page.status()) || absl::IsUnavailable(page.status()))
      << page.status();
  server.Resume();
  // The frozen Redis may still run the call that timed out: the offset is 2 or 3.
  absl::StatusOr<DurablePublished> after = absl::UnavailableError("not yet");
  ASSERT_TRUE(WaitFor(
      [&] {
        after = Publish("news", "3");
        return after.ok();
      },
      kDurableWait));
  EXPECT_GE(after->position.offset, 2u);
  EXPECT_LE(after->position.offset, 3u);
}

TEST_F(DurableTest, AChannelThatCannotBeDurableIsRefusedAndHistoryIsAnsweredOnTheStrand) {
  RedisServer server;
  Connect(server);
  absl::StatusOr<DurablePublished> published = Publish("a}b", "p");
  EXPECT_EQ(published.status().code(), absl::StatusCode::kInvalidArgument);

  // Even a refusal known at once comes back as a handler of the upstream's strand, never
  // inside the caller.
  Answer<HistoryPage> answer;
  upstream_->ReadHistory(Query("a}b"), answer.Callback());
  EXPECT_EQ(answer.Await().status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(answer.thread(), std::this_thread::get_id());
}

}  // namespace
}  // namespace bridge::redis
