// The WebSocket server against real Beast clients, over a hub whose upstream is an
// in-process double (tests/ws/threaded_upstream.h). ws_redis_test.cc repeats the main
// paths against a real redis-server.
#include "bridge/ws/ws_server.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"
#include "tests/ws/threaded_upstream.h"
#include "tests/ws/ws_test_client.h"

namespace bridge::ws {
namespace {

using ::bridge::testing::WaitFor;
using testing::HttpGet;
using testing::ThreadedUpstream;
using testing::WsTestClient;
using Json = nlohmann::json;

#define ASSERT_OK(expr)                            \
  do {                                             \
    const absl::Status st_ = (expr);               \
    ASSERT_TRUE(st_.ok()) << #expr << ": " << st_; \
  } while (0)

class WsServerTest : public ::testing::Test {
 protected:
  static WsOptions Defaults() {
    WsOptions o;
    o.address = "127.0.0.1:0";
    o.threads = 2;
    return o;
  }

  void Start(WsOptions options = Defaults()) {
    hub_ = std::make_unique<hub::Hub>(hub::HubOptions{}, &upstream_);
    upstream_.Connect();
    upstream_.Flush();
    server_ = std::make_unique<WsServer>(options, hub_.get());
    ASSERT_OK(server_->Start());
    ASSERT_GT(server_->port(), 0);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(2));
    server_.reset();
    upstream_.Flush();
    hub_.reset();
  }

  std::unique_ptr<WsTestClient> Client(const std::string& target = "/ws") {
    WsTestClient::Options o;
    o.target = target;
    auto c = WsTestClient::Connect(server_->port(), o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  // Subscribes to `channel` and waits for the confirmation.
  void Subscribe(WsTestClient& c, const std::string& channel) {
    ASSERT_OK(c.SendJson({{"op", "subscribe"}, {"channels", {channel}}}));
    auto frame = c.ReadOp("subscribed");
    ASSERT_TRUE(frame.ok()) << frame.status();
    EXPECT_EQ((*frame)["channel"], channel);
  }

  ThreadedUpstream upstream_;
  std::unique_ptr<hub::Hub> hub_;
  std::unique_ptr<WsServer> server_;
};

TEST_F(WsServerTest, HealthzFollowsUpstream) {
  Start();
  auto r = HttpGet(server_->port(), "/healthz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  upstream_.Disconnect();
  upstream_.Flush();
  r = HttpGet(server_->port(), "/healthz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 503);
}

TEST_F(WsServerTest, ServesWebRootOnly) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / absl::StrCat("bridge-web-", getpid());
  fs::create_directories(root / "sub");
  std::ofstream(root / "index.html") << "<!doctype html><title>t</title>";
  std::ofstream(root / "sub" / "app.js") << "export {};";
  std::ofstream(root / ".secret") << "no";
  std::ofstream(root.parent_path() / "outside.txt") << "no";
  WsOptions o = Defaults();
  o.web_root = root.string();
  Start(o);
  const int port = server_->port();

  auto r = HttpGet(port, "/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r->body, "<!doctype html><title>t</title>");
  r = HttpGet(port, "/sub/app.js?v=2");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "text/javascript; charset=utf-8");
  for (const char* bad : {"/../outside.txt", "/%2e%2e/outside.txt", "/sub/../../outside.txt",
                          "/.secret", "/nope", "/sub", "/sub/"}) {
    r = HttpGet(port, bad);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 404) << bad;
  }
  r = HttpGet(port, "/ws");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 426);
  fs::remove_all(root);
}

TEST_F(WsServerTest, SubscribeThenMessages) {
  Start();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  Subscribe(*c, "news");
  upstream_.Deliver("news", "hello \"world\"");
  upstream_.Deliver("news", std::string("\x00\xff", 2));
  auto m = c->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["channel"], "news");
  EXPECT_EQ((*m)["data"], "hello \"world\"");
  EXPECT_EQ((*m)["seq"], 1);
  m = c->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data_b64"], "AP8=");
  EXPECT_EQ((*m)["seq"], 2);
}

TEST_F(WsServerTest, Patterns) {
  Start();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendJson({{"op", "subscribe"}, {"patterns", {"news.*"}}}));
  auto s = c->ReadOp("subscribed");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)["pattern"], "news.*");
  upstream_.DeliverPattern("news.*", "news.eu", "x");
  auto m = c->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["channel"], "news.eu");
  EXPECT_EQ((*m)["pattern"], "news.*");
}

TEST_F(WsServerTest, SubscribeFromUrl) {
  Start();
  auto c = Client("/ws?channel=a&channel=b%20c&pattern=p%2A&other=1");
  ASSERT_NE(c, nullptr);
  std::set<std::string> got;
  for (int i = 0; i < 3; ++i) {
    auto s = c->ReadOp("subscribed");
    ASSERT_TRUE(s.ok()) << s.status();
    got.insert(s->contains("channel") ? "c:" + (*s)["channel"].get<std::string>()
                                      : "p:" + (*s)["pattern"].get<std::string>());
  }
  EXPECT_EQ(got, (std::set<std::string>{"c:a", "c:b c", "p:p*"}));
}

TEST_F(WsServerTest, UnsubscribeStopsOnlyThatChannel) {
  Start();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  Subscribe(*c, "a");
  Subscribe(*c, "b");
  ASSERT_OK(c->SendJson({{"op", "unsubscribe"}, {"channels", {"a"}}}));
  auto u = c->ReadOp("unsubscribed");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ((*u)["channel"], "a");
  upstream_.Deliver("a", "lost");
  upstream_.Deliver("b", "kept");
  auto m = c->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["channel"], "b");
  EXPECT_EQ((*m)["data"], "kept");
}

TEST_F(WsServerTest, ClosingOneSocketKeepsTheOthers) {
  Start();
  auto a = Client();
  auto b = Client();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  Subscribe(*a, "shared");
  Subscribe(*b, "shared");
  a.reset();  // gone without a close handshake
  ASSERT_TRUE(WaitFor([&] { return hub_->Stats().subscribers == 1; }));
  EXPECT_EQ(hub_->Stats().topics, 1u);
  upstream_.Deliver("shared", "still here");
  auto m = b->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data"], "still here");
}

TEST_F(WsServerTest, BadInputGetsErrorAndKeepsConnection) {
  WsOptions o = Defaults();
  o.max_subscriptions = 3;
  Start(o);
  auto bystander = Client();
  ASSERT_NE(bystander, nullptr);
  Subscribe(*bystander, "calm");
  auto c = Client();
  ASSERT_NE(c, nullptr);
  const std::string long_name(300, 'x');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "bad_json"},
      {"[1,2]", "bad_json"},
      {R"({"op":"dance"})", "unknown_op"},
      {R"({"channels":["a"]})", "unknown_op"},
      {R"({"op":"subscribe"})", "bad_field"},
      {R"({"op":"subscribe","channels":"a"})", "bad_field"},
      {R"({"op":"subscribe","channels":[5]})", "bad_field"},
      {R"({"op":"subscribe","channels":[""]})", "bad_channel"},
      {R"({"op":"subscribe","channels":[")" + long_name + "\"]}", "bad_channel"},
      {R"({"op":"subscribe","channels":["ctl\u0001"]})", "bad_channel"},
      {R"({"op":"subscribe","channels":["a","b","c","d"]})", "too_many_subscriptions"},
      {R"({"op":"publish","channel":"a","data":"x"})", "publish_forbidden"},
  };
  for (const auto& [frame, code] : cases) {
    ASSERT_OK(c->SendText(frame));
    auto e = c->ReadOp("error");
    ASSERT_TRUE(e.ok()) << frame << ": " << e.status();
    EXPECT_EQ((*e)["code"], code) << frame;
    EXPECT_TRUE((*e)["message"].is_string());
  }
  ASSERT_OK(c->SendBinary("\x01\x02"));
  auto e = c->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "binary_unsupported");

  // Past the limit across frames: the hub refuses the fourth topic.
  Subscribe(*c, "one");
  Subscribe(*c, "two");
  Subscribe(*c, "three");
  ASSERT_OK(c->SendJson({{"op", "subscribe"}, {"channels", {"four"}}}));
  e = c->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "too_many_subscriptions");

  ASSERT_OK(c->Barrier());
  upstream_.Deliver("calm", "undisturbed");
  auto m = bystander->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data"], "undisturbed");
}

TEST_F(WsServerTest, OversizedFrameCloses1009) {
  WsOptions o = Defaults();
  o.max_frame_bytes = 1024;
  Start(o);
  auto bystander = Client();
  ASSERT_NE(bystander, nullptr);
  auto c = Client();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendText(R"({"op":"ping","pad":")" + std::string(2000, 'x') + "\"}"));
  auto code = c->ReadUntilClosed();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1009) << c->last_error();
  ASSERT_OK(bystander->Barrier());
}

TEST_F(WsServerTest, FloodCloses1008) {
  WsOptions o = Defaults();
  o.max_client_frames_per_sec = 5;
  o.client_frame_burst = 10;
  Start(o);
  auto bystander = Client();
  ASSERT_NE(bystander, nullptr);
  auto c = Client();
  ASSERT_NE(c, nullptr);
  // Writes after the server closed may fail; the reads below tell what happened.
  for (int i = 0; i < 40; ++i) {
    if (!c->SendText(R"({"op":"ping"})").ok()) break;
  }
  auto e = c->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "rate_limited");
  auto code = c->ReadUntilClosed();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1008);
  ASSERT_OK(bystander->Barrier());
}

TEST_F(WsServerTest, OriginCheckedAtHandshake) {
  WsOptions o = Defaults();
  o.allowed_origins = {"http://good.example/"};
  Start(o);
  WsTestClient::Options co;
  co.origin = "http://evil.example";
  auto refused = WsTestClient::Connect(server_->port(), co);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "HTTP 403");
  co.origin = "http://good.example";
  auto allowed = WsTestClient::Connect(server_->port(), co);
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  ASSERT_OK((*allowed)->Barrier());
  auto no_origin = WsTestClient::Connect(server_->port());  // not a browser
  ASSERT_TRUE(no_origin.ok()) << no_origin.status();
}

TEST_F(WsServerTest, PublishWhenAllowed) {
  WsOptions o = Defaults();
  o.allow_publish = true;
  Start(o);
  auto c = Client();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", "out"}, {"data", "hi"}}));
  auto p = c->ReadOp("published");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)["channel"], "out");
  EXPECT_EQ((*p)["receivers"], 7);
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", "out"}, {"data_b64", "AP8="}}));
  ASSERT_TRUE(c->ReadOp("published").ok());
  const auto published = upstream_.published();
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[0], std::make_pair(std::string("out"), std::string("hi")));
  EXPECT_EQ(published[1].second, std::string("\x00\xff", 2));
}

TEST_F(WsServerTest, IdlePeerIsClosedAndReleased) {
  WsOptions o = Defaults();
  o.ping_interval = absl::Milliseconds(50);
  o.idle_timeout = absl::Milliseconds(300);
  Start(o);
  auto live = Client();
  ASSERT_NE(live, nullptr);
  auto idle = Client();
  ASSERT_NE(idle, nullptr);
  Subscribe(*idle, "quiet");
  ASSERT_EQ(server_->session_count(), 2u);
  // `idle` reads no more, so it answers no ping; `live` keeps reading (and answering).
  const absl::Time start = absl::Now();
  ASSERT_TRUE(WaitFor(
      [&] {
        EXPECT_TRUE(live->Barrier().ok());
        return server_->session_count() == 1;
      },
      absl::Seconds(10)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_EQ(hub_->Stats().topics, 0u);
  ASSERT_OK(live->Barrier());
}

TEST_F(WsServerTest, ShutdownSendsGoingAway) {
  Start();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  Subscribe(*c, "x");
  std::thread stopper([&] { server_->Shutdown(absl::Seconds(5)); });
  auto code = c->ReadUntilClosed();
  stopper.join();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1001);
  EXPECT_EQ(hub_->Stats().subscribers, 0u);
  EXPECT_FALSE(HttpGet(server_->port(), "/healthz", absl::Seconds(2)).ok());
}

TEST_F(WsServerTest, HubShutdownSendsGoingAway) {
  Start();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  Subscribe(*c, "x");
  hub_->Shutdown();
  auto code = c->ReadUntilClosed();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1001);
}

// A socket that stops reading fills its TCP buffers, then its hub queue; the hub drops
// its oldest messages (and later says so with a gap) while a reading socket on the same
// channel gets every message in order.
TEST_F(WsServerTest, SlowReaderDoesNotHoldBackOthers) {
  WsOptions o = Defaults();
  o.subscriber.max_queued_messages = 100;
  o.subscriber.max_queued_bytes = 1 << 20;
  o.subscriber.policy = hub::SlowConsumerPolicy::kDrop;
  Start(o);
  auto slow = Client();
  auto fast = Client();
  ASSERT_NE(slow, nullptr);
  ASSERT_NE(fast, nullptr);
  Subscribe(*slow, "firehose");
  Subscribe(*fast, "firehose");
  const std::string payload(16 << 10, 'p');
  constexpr int kRounds = 40;
  constexpr int kPerRound = 25;
  int expected = 1;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kPerRound; ++i) upstream_.Deliver("firehose", payload);
    for (int i = 0; i < kPerRound; ++i, ++expected) {
      auto m = fast->Read();
      ASSERT_TRUE(m.ok()) << m.status();
      ASSERT_EQ((*m)["op"], "message") << m->dump().substr(0, 200);
      ASSERT_EQ((*m)["seq"], expected);
    }
  }
  // Now the slow one reads: some messages, a gap, the newest messages, in order.
  const int last = kRounds * kPerRound;
  uint64_t dropped = 0;
  int prev = 0;
  int received = 0;
  while (prev < last) {
    auto m = slow->Read();
    ASSERT_TRUE(m.ok()) << m.status();
    if ((*m)["op"] == "gap") {
      EXPECT_EQ((*m)["reason"], "slow_consumer");
      dropped += (*m)["dropped"].get<uint64_t>();
      continue;
    }
    ASSERT_EQ((*m)["op"], "message");
    const int seq = (*m)["seq"];
    ASSERT_GT(seq, prev);
    prev = seq;
    ++received;
  }
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(received + dropped, static_cast<uint64_t>(last));
}

TEST_F(WsServerTest, SlowReaderIsDisconnectedUnderThatPolicy) {
  WsOptions o = Defaults();
  o.subscriber.max_queued_messages = 50;
  o.subscriber.policy = hub::SlowConsumerPolicy::kDisconnect;
  o.handshake_timeout = absl::Seconds(1);
  Start(o);
  auto slow = Client();
  auto fast = Client();
  ASSERT_NE(slow, nullptr);
  ASSERT_NE(fast, nullptr);
  Subscribe(*slow, "firehose");
  Subscribe(*fast, "firehose");
  const std::string payload(16 << 10, 'p');
  int expected = 1;
  for (int round = 0; round < 40 && server_->session_count() == 2; ++round) {
    for (int i = 0; i < 25; ++i) upstream_.Deliver("firehose", payload);
    for (int i = 0; i < 25; ++i, ++expected) {
      auto m = fast->Read();
      ASSERT_TRUE(m.ok()) << m.status();
      ASSERT_EQ((*m)["seq"], expected);
    }
  }
  ASSERT_TRUE(WaitFor([&] { return server_->session_count() == 1; }));
  ASSERT_OK(fast->Barrier());
}

}  // namespace
}  // namespace bridge::ws
