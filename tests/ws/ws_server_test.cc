// The WebSocket server against real Beast clients, over a hub whose upstream is the real
// Redis upstream on a real redis-server (one per test, on a free loopback port). Messages
// reach the sockets the way they do in production: PUBLISH to Redis, SUBSCRIBE fan-out.
// ws_redis_test.cc runs the whole App next to gRPC streams.
#include "bridge/ws/ws_server.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bridge/hub/hub.h"
#include "bridge/redis/redis_upstream.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"
#include "tests/ws/ws_test_client.h"

namespace bridge::ws {
namespace {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

using ::bridge::testing::RedisServer;
using ::bridge::testing::WaitFor;
using testing::HttpGet;
using testing::HttpRequest;
using testing::WsTestClient;
using Json = nlohmann::json;

#define ASSERT_OK(expr)                            \
  do {                                             \
    const absl::Status st_ = (expr);               \
    ASSERT_TRUE(st_.ok()) << #expr << ": " << st_; \
  } while (0)

// The server runs in this process, so the server's end of a connection is among our
// descriptors, found by its two ports; -1 if not (yet) there.
int ServerEndOf(int server_port, int client_port) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &fd)) continue;
    sockaddr_in local{}, peer{};
    socklen_t n = sizeof local, m = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &n) == 0 &&
        local.sin_family == AF_INET && ntohs(local.sin_port) == server_port &&
        getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &m) == 0 &&
        ntohs(peer.sin_port) == client_port) {
      return fd;
    }
  }
  return -1;
}

// One client-to-server frame: FIN, `opcode`, masked with the all-zero key (so the
// payload stays as it is), for clients that write raw bytes.
std::string MaskedFrame(int opcode, std::string_view payload) {
  std::string out(1, static_cast<char>(0x80 | opcode));
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(0x80 | payload.size()));
  } else if (payload.size() < 65536) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((uint64_t{payload.size()} >> shift) & 0xff));
    }
  }
  out.append(4, '\0');
  out.append(payload);
  return out;
}

constexpr int kText = 0x1;
constexpr int kClose = 0x8;
constexpr int kPing = 0x9;
constexpr int kPong = 0xa;

// The close code of a close frame's payload; 0 if it has none.
int CloseCode(std::string_view payload) {
  if (payload.size() < 2) return 0;
  return (static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]);
}

// A WebSocket client on a bare non-blocking socket, for what a Beast client hides: a
// peer that writes while it does not read, and every frame on the wire up to the TCP
// end. Small socket buffers make the server's sends stall soon. One thread may read
// while another writes.
class RawClient {
 public:
  struct Frame {
    int opcode = 0;
    std::string payload;
  };

  // `first_frames` go out in the same write as the upgrade request.
  static std::unique_ptr<RawClient> Connect(int port, int buffer_bytes,
                                            std::string_view first_frames = {}) {
    std::unique_ptr<RawClient> c(new RawClient(socket(AF_INET, SOCK_STREAM, 0)));
    // Set before connecting, so that the window is small from the start.
    setsockopt(c->fd_, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
    setsockopt(c->fd_, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return nullptr;
    int one = 1;
    setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const std::string upgrade = absl::StrCat(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:", port,
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        absl::string_view(first_frames.data(), first_frames.size()));
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    if (!c->SendAll(upgrade, absl::Seconds(10))) return nullptr;
    size_t end;
    while ((end = c->in_.find("\r\n\r\n")) == std::string::npos) {
      if (!c->Receive(deadline)) return nullptr;
    }
    if (c->in_.rfind("HTTP/1.1 101", 0) != 0) return nullptr;
    c->in_.erase(0, end + 4);
    return c;
  }

  ~RawClient() { close(fd_); }

  int fd() const { return fd_; }
  int local_port() const {
    sockaddr_in local{};
    socklen_t n = sizeof local;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &n);
    return ntohs(local.sin_port);
  }

  // What the socket takes now, without waiting: 0 when it is full, -1 on error.
  ssize_t SendSome(std::string_view bytes) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    return n;
  }
  // Waits until the socket takes more; false when it did not within `timeout`.
  bool WaitWritable(absl::Duration timeout) {
    pollfd p{fd_, POLLOUT, 0};
    return poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) == 1;
  }
  bool SendAll(std::string_view bytes, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!bytes.empty()) {
      const ssize_t n = SendSome(bytes);
      if (n < 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
      if (n == 0 && !WaitWritable(std::max(deadline - absl::Now(), absl::ZeroDuration()))) {
        return false;
      }
    }
    return true;
  }
  bool SendFrame(int opcode, std::string_view payload) {
    return SendAll(MaskedFrame(opcode, payload), absl::Seconds(10));
  }

  // The next server frame; nullopt at the end of the stream (eof()) or on timeout.
  std::optional<Frame> ReadFrame(absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    auto need = [&](size_t n) {
      while (in_.size() < n) {
        if (!Receive(deadline)) return false;
      }
      return true;
    };
    if (!need(2)) return std::nullopt;
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(in_[i]); };
    size_t header = 2;
    uint64_t length = byte(1) & 0x7f;
    if (length == 126) {
      if (!need(4)) return std::nullopt;
      length = (uint64_t{byte(2)} << 8) | byte(3);
      header = 4;
    } else if (length == 127) {
      if (!need(10)) return std::nullopt;
      length = 0;
      for (size_t i = 2; i < 10; ++i) length = (length << 8) | byte(i);
      header = 10;
    }
    if (!need(header + length)) return std::nullopt;
    Frame f{byte(0) & 0x0f, in_.substr(header, length)};
    in_.erase(0, header + length);
    return f;
  }
  // Text frames until one whose "op" is `op`; nullopt if none came.
  std::optional<Json> ReadOp(std::string_view op) {
    while (auto f = ReadFrame()) {
      if (f->opcode != kText) continue;
      Json j = Json::parse(f->payload, nullptr, false);
      if (j.is_object() && j["op"] == op) return j;
    }
    return std::nullopt;
  }
  bool eof() const { return eof_; }

 private:
  explicit RawClient(int fd) : fd_(fd) {}

  // Appends what arrives by the deadline to in_; false at EOF, on error or timeout.
  bool Receive(absl::Time deadline) {
    pollfd p{fd_, POLLIN, 0};
    const int ms = static_cast<int>(
        absl::ToInt64Milliseconds(std::max(deadline - absl::Now(), absl::ZeroDuration())));
    if (poll(&p, 1, ms) != 1) return false;
    char buf[16384];
    const ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) eof_ = true;
    if (n <= 0) return false;
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }

  const int fd_;
  std::string in_;
  bool eof_ = false;
};

// Redis, its upstream on an io_context of its own thread (as App runs it), the hub, and
// the WebSocket server under test. Each test calls Start with the options it needs.
class WsServerTest : public ::testing::Test {
 protected:
  static WsOptions Defaults() {
    WsOptions o;
    o.address = "127.0.0.1:0";
    o.threads = 2;
    return o;
  }

  void Start(WsOptions options = Defaults()) {
    redis::RedisUpstreamOptions ro;
    ro.url = redis_.url();
    auto upstream = redis::RedisUpstream::Create(ro, redis_io_);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = *std::move(upstream);
    hub::HubOptions ho;
    ho.on_health_change = [this](bool healthy) {
      absl::MutexLock lock(&health_mu_);
      healthy_ = healthy;
      health_cv_.SignalAll();
    };
    hub_ = std::make_unique<hub::Hub>(ho, upstream_.get());
    server_ = std::make_unique<WsServer>(options, hub_.get());
    ASSERT_OK(server_->Start());
    ASSERT_GT(server_->port(), 0);
    redis_thread_ = std::thread([this] { redis_io_.run(); });
    upstream_->Start();
    ASSERT_TRUE(WaitHealthy(true));
    // The publish connection has no event of its own; it comes up next to the
    // subscriber connection.
    ASSERT_TRUE(WaitFor([&] { return upstream_->connected(); }));
  }

  // A raw client with small socket buffers of its own, whose server end gets a small
  // `option` (SO_RCVBUF or SO_SNDBUF) too, so that the server's socket fills quickly;
  // `server_end`, if given, gets the server's descriptor of it.
  std::unique_ptr<RawClient> SmallBufferedClient(int option, int* server_end = nullptr) {
    auto c = RawClient::Connect(server_->port(), 4096);
    EXPECT_NE(c, nullptr);
    if (c == nullptr) return nullptr;
    int server_fd = -1;
    EXPECT_TRUE(
        WaitFor([&] { return (server_fd = ServerEndOf(server_->port(), c->local_port())) >= 0; }));
    const int bytes = 64 << 10;
    EXPECT_EQ(setsockopt(server_fd, SOL_SOCKET, option, &bytes, sizeof bytes), 0);
    if (server_end != nullptr) *server_end = server_fd;
    return c;
  }

  // In App's order: sockets first, then the hub's subscribers, then Redis.
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(2));
    if (hub_ != nullptr) hub_->Shutdown();
    if (upstream_ != nullptr) upstream_->Stop();
    redis_work_.reset();
    if (redis_thread_.joinable()) redis_thread_.join();
    server_.reset();
    hub_.reset();
    upstream_.reset();
  }

  // Waits for the hub to report this health (its on_health_change event).
  bool WaitHealthy(bool healthy, absl::Duration timeout = absl::Seconds(15)) {
    const absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&health_mu_);
    while (healthy_ != healthy) {
      if (health_cv_.WaitWithDeadline(&health_mu_, deadline)) return healthy_ == healthy;
    }
    return true;
  }

  std::unique_ptr<WsTestClient> Client(const std::string& target = "/ws") {
    WsTestClient::Options o;
    o.target = target;
    auto c = WsTestClient::Connect(server_->port(), o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  // A server that takes publishes, a client of it, and a Redis that takes no PUBLISH for
  // 30 s (until CLIENT UNPAUSE): the client's publishes stay pending.
  std::unique_ptr<WsTestClient> PublisherWithRedisPaused() {
    WsOptions o = Defaults();
    o.allow_publish = true;
    Start(o);
    auto c = Client();
    EXPECT_TRUE(redis_.Command({"CLIENT", "PAUSE", "30000", "WRITE"}).ok());
    return c;
  }

  // Subscribes to `channel` and waits for the confirmation, which comes once Redis
  // confirmed the SUBSCRIBE: every message published from now on reaches the socket.
  void Subscribe(WsTestClient& c, const std::string& channel) {
    ASSERT_OK(c.SendJson({{"op", "subscribe"}, {"channels", {channel}}}));
    auto frame = c.ReadOp("subscribed");
    ASSERT_TRUE(frame.ok()) << frame.status();
    EXPECT_EQ((*frame)["channel"], channel);
  }

  RedisServer redis_;
  boost::asio::io_context redis_io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> redis_work_ =
      boost::asio::make_work_guard(redis_io_);
  std::thread redis_thread_;
  std::unique_ptr<redis::RedisUpstream> upstream_;
  std::unique_ptr<hub::Hub> hub_;
  std::unique_ptr<WsServer> server_;

  absl::Mutex health_mu_;
  absl::CondVar health_cv_;
  bool healthy_ ABSL_GUARDED_BY(health_mu_) = false;
};

TEST_F(WsServerTest, HealthzFollowsUpstream) {
  Start();
  auto r = HttpGet(server_->port(), "/healthz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  redis_.Kill();
  ASSERT_TRUE(WaitHealthy(false));
  r = HttpGet(server_->port(), "/healthz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 503);
  redis_.Start();
  ASSERT_TRUE(WaitHealthy(true));
  r = HttpGet(server_->port(), "/healthz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(WsServerTest, ServesWebRootOnly) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / absl::StrCat("bridge-web-", getpid());
  fs::create_directories(root / "sub");
  std::ofstream(root / "index.html") << "<!doctype html><title>t</title>";
  std::ofstream(root / "sub" / "app.js") << "export {};";
  std::ofstream(root / ".secret") << "no";
  std::ofstream(root.parent_path() / "outside.txt") << "no";
  // Symlinks inside the root that lead out of it, or to a hidden file, are not served.
  fs::create_directories(root / ".git");
  std::ofstream(root / ".git" / "config") << "no";
  fs::create_symlink(root.parent_path() / "outside.txt", root / "out.txt");
  fs::create_symlink(root / ".git" / "config", root / "config.txt");
  fs::create_symlink(root / "index.html", root / "home.html");
  WsOptions o = Defaults();
  o.web_root = root.string();
  Start(o);
  const int port = server_->port();

  auto r = HttpGet(port, "/home.html");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "<!doctype html><title>t</title>");
  r = HttpGet(port, "/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r->body, "<!doctype html><title>t</title>");
  r = HttpGet(port, "/sub/app.js?v=2");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "text/javascript; charset=utf-8");
  for (const char* bad :
       {"/../outside.txt", "/%2e%2e/outside.txt", "/sub/../../outside.txt", "/.secret", "/nope",
        "/sub", "/sub/", "/out.txt", "/config.txt", "/.git/config"}) {
    r = HttpGet(port, bad);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 404) << bad;
  }
  r = HttpGet(port, "/ws");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 426);
  fs::remove_all(root);
}

// What a bare socket that sends `request` reads back until the server closes (or 10 s).
std::string RawHttpExchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string in;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) in.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return in;
}

// Requests the parser refuses get a status that says why, not a bare close.
TEST_F(WsServerTest, MalformedRequestsGet400Or431) {
  Start(Defaults());
  const int port = server_->port();
  const std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {head + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 400"},
      {head + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400"},
      {head + "X-Big: " + std::string(9000, 'a') + "\r\n\r\n", "HTTP/1.1 431"},
      {"GET / HTTP/9\r\n\r\n", "HTTP/1.1 400"},
  };
  for (const auto& [request, status] : cases) {
    const std::string answer = RawHttpExchange(port, request);
    EXPECT_EQ(answer.substr(0, status.size()), status) << request.substr(0, 80);
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer.substr(0, 200);
  }
  // Other clients are served as before.
  auto r = HttpGet(port, "/healthz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

// The files and /healthz are read-only: HEAD gives GET's headers without the body, any
// other method 405 with the methods that work.
TEST_F(WsServerTest, HeadAnswersGetsHeadersAndOtherMethodsAreRefused) {
  namespace fs = std::filesystem;
  namespace http = boost::beast::http;
  const fs::path root = fs::temp_directory_path() / absl::StrCat("bridge-head-", getpid());
  fs::create_directories(root);
  std::ofstream(root / "index.html") << "<!doctype html><title>head</title>";
  WsOptions o = Defaults();
  o.web_root = root.string();
  Start(o);
  const int port = server_->port();

  auto r = HttpRequest(port, http::verb::head, "/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r->content_length, "34");
  EXPECT_EQ(r->body, "");
  r = HttpRequest(port, http::verb::head, "/healthz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_length, "3");
  EXPECT_EQ(r->body, "");
  for (const char* target : {"/", "/healthz"}) {
    for (http::verb method : {http::verb::post, http::verb::put, http::verb::delete_}) {
      r = HttpRequest(port, method, target);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->status, 405) << target << " " << http::to_string(method);
      EXPECT_EQ(r->allow, "GET, HEAD") << target;
    }
  }
  // The server still answers on the same terms afterwards.
  r = HttpGet(port, "/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "<!doctype html><title>head</title>");
  fs::remove_all(root);
}

TEST_F(WsServerTest, SubscribeThenMessages) {
  Start();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  Subscribe(*c, "news");
  EXPECT_EQ(redis_.NumSub("news"), 1);
  EXPECT_EQ(redis_.Publish("news", "hello \"world\""), 1);
  EXPECT_EQ(redis_.Publish("news", std::string("\x00\xff", 2)), 1);
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

// The server's end of a WebSocket sends at once (TCP_NODELAY): the server runs in this
// process, so its accepted socket is among our descriptors, found by its two ports.
TEST_F(WsServerTest, AcceptedSocketsSendWithoutDelay) {
  Start();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  Subscribe(*c, "x");
  const auto client_end = beast::get_lowest_layer(c->stream()).socket().local_endpoint();
  const int fd = ServerEndOf(server_->port(), client_end.port());
  ASSERT_GE(fd, 0);
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  ASSERT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  EXPECT_NE(nodelay, 0);
}

// Every length form of the frame header (7-, 16- and 64-bit) reaches the client intact,
// in order, with the server's pongs to the client's pings between the messages: frames
// written in one send never interleave.
TEST_F(WsServerTest, FramesOfEveryLengthAndPongsStayWhole) {
  Start();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  int pongs = 0;
  c->stream().control_callback([&](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong) ++pongs;
  });
  Subscribe(*c, "sizes");
  const std::vector<size_t> sizes = {0, 1, 80, 125, 126, 200, 65535, 65536, 70000, 300000};
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    for (size_t size : sizes) {
      ASSERT_EQ(redis_.Publish("sizes", std::string(size, static_cast<char>('a' + round))), 1);
      c->stream().ping({});
    }
  }
  for (int round = 0; round < kRounds; ++round) {
    for (size_t size : sizes) {
      auto m = c->ReadOp("message");
      ASSERT_TRUE(m.ok()) << m.status();
      EXPECT_EQ((*m)["data"], std::string(size, static_cast<char>('a' + round)));
    }
  }
  ASSERT_OK(c->Barrier());
  EXPECT_EQ(pongs, kRounds * static_cast<int>(sizes.size()));
}

TEST_F(WsServerTest, Patterns) {
  Start();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendJson({{"op", "subscribe"}, {"patterns", {"news.*"}}}));
  auto s = c->ReadOp("subscribed");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)["pattern"], "news.*");
  EXPECT_EQ(redis_.NumPat(), 1);
  EXPECT_EQ(redis_.Publish("news.eu", "x"), 1);
  auto m = c->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["channel"], "news.eu");
  EXPECT_EQ((*m)["pattern"], "news.*");
  EXPECT_EQ((*m)["data"], "x");
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
  // The names reached Redis decoded.
  EXPECT_EQ(redis_.NumSub("b c"), 1);
  EXPECT_EQ(redis_.Publish("pq", "via pattern"), 1);
  auto m = c->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["channel"], "pq");
  EXPECT_EQ((*m)["pattern"], "p*");
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
  // The socket no longer gets "a" even while Redis may still deliver it; Redis then
  // drops the subscription, its last subscriber gone.
  redis_.Publish("a", "lost");
  EXPECT_EQ(redis_.Publish("b", "kept"), 1);
  auto m = c->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["channel"], "b");
  EXPECT_EQ((*m)["data"], "kept");
  EXPECT_TRUE(WaitFor([&] { return redis_.NumSub("a") == 0; }));
  EXPECT_EQ(redis_.NumSub("b"), 1);
}

TEST_F(WsServerTest, ClosingOneSocketKeepsTheOthers) {
  Start();
  auto a = Client();
  auto b = Client();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  Subscribe(*a, "shared");
  Subscribe(*b, "shared");
  EXPECT_EQ(redis_.NumSub("shared"), 1);
  a.reset();  // gone without a close handshake
  ASSERT_TRUE(WaitFor([&] { return hub_->Stats().subscribers == 1; }));
  EXPECT_EQ(hub_->Stats().topics(), 1u);
  EXPECT_EQ(redis_.NumSub("shared"), 1);
  EXPECT_EQ(redis_.Publish("shared", "still here"), 1);
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
  // Nothing refused reached Redis.
  EXPECT_EQ(redis_.NumSub("a"), 0);

  // Past the limit across frames: the hub refuses the fourth topic.
  Subscribe(*c, "one");
  Subscribe(*c, "two");
  Subscribe(*c, "three");
  ASSERT_OK(c->SendJson({{"op", "subscribe"}, {"channels", {"four"}}}));
  e = c->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "too_many_subscriptions");
  EXPECT_EQ(redis_.NumSub("four"), 0);

  ASSERT_OK(c->Barrier());
  EXPECT_EQ(redis_.Publish("calm", "undisturbed"), 1);
  auto m = bystander->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data"], "undisturbed");
}

// An unsubscribe names topics as a subscribe does, and is refused on the same terms:
// no "unsubscribed" echoes a name no subscribe could have taken.
TEST_F(WsServerTest, UnsubscribeOfABadNameIsRefused) {
  Start();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  Subscribe(*c, "kept");
  const std::string long_name(300, 'x');
  for (const std::string& frame : {
           std::string(R"({"op":"unsubscribe","channels":[""]})"),
           R"({"op":"unsubscribe","channels":[")" + long_name + "\"]}",
           std::string(R"({"op":"unsubscribe","channels":["ctl\u0001"]})"),
           std::string(R"({"op":"unsubscribe","channels":["kept"],"patterns":["p\u007f"]})"),
       }) {
    ASSERT_OK(c->SendText(frame));
    auto e = c->Read();
    ASSERT_TRUE(e.ok()) << frame << ": " << e.status();
    EXPECT_EQ((*e)["op"], "error") << frame << ": " << e->dump();
    EXPECT_EQ((*e)["code"], "bad_channel") << frame;
  }
  // The refused frame released nothing, valid names included.
  ASSERT_OK(c->Barrier());
  EXPECT_EQ(redis_.NumSub("kept"), 1);
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

// A frame far over the limit: the server answers 1009 and then reads (and drops) the
// rest of it until the client closes, so that no reset destroys the close frame.
TEST_F(WsServerTest, FrameOfMegabytesCloses1009) {
  WsOptions o = Defaults();
  o.max_frame_bytes = 64 << 10;
  Start(o);
  auto c = Client();
  ASSERT_NE(c, nullptr);
  // The write may end early once the server has closed; the close code tells.
  (void)c->SendText(R"({"op":"ping","pad":")" + std::string(2 << 20, 'x') + "\"}");
  auto code = c->ReadUntilClosed();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1009) << c->last_error();
  EXPECT_TRUE(WaitFor([&] { return server_->session_objects() == 0; }));
}

// The same for a close Bridge starts on a client that sent megabytes of frames before it
// reads: it gets its error and the 1008 close frame, and the connection's end, no reset.
TEST_F(WsServerTest, RateLimitedFloodGetsItsCloseFrame) {
  WsOptions o = Defaults();
  o.max_client_frames_per_sec = 5;
  o.client_frame_burst = 10;
  Start(o);
  auto c = RawClient::Connect(server_->port(), 1 << 20);
  ASSERT_NE(c, nullptr);
  std::string flood;
  while (flood.size() < (2 << 20)) flood += MaskedFrame(kText, R"({"op":"ping"})");
  (void)c->SendAll(flood, absl::Seconds(10));
  bool rate_limited = false;
  int close_code = 0;
  while (auto f = c->ReadFrame()) {
    if (f->opcode == kText && Json::parse(f->payload)["code"] == "rate_limited") {
      rate_limited = true;
    }
    if (f->opcode == kClose) {
      close_code = CloseCode(f->payload);
      ASSERT_TRUE(c->SendFrame(kClose, f->payload.substr(0, 2)));
    }
  }
  EXPECT_TRUE(rate_limited);
  EXPECT_EQ(close_code, 1008);
  EXPECT_TRUE(c->eof()) << "no orderly end of the connection";
}

// A ping is a client frame for the rate limit (Beast answers each with a pong).
TEST_F(WsServerTest, PingsCountAgainstTheRateLimit) {
  WsOptions o = Defaults();
  o.max_client_frames_per_sec = 5;
  o.client_frame_burst = 10;
  Start(o);
  auto c = RawClient::Connect(server_->port(), 1 << 20);
  ASSERT_NE(c, nullptr);
  std::string pings;
  for (int i = 0; i < 40; ++i) pings += MaskedFrame(kPing, "p");
  ASSERT_TRUE(c->SendAll(pings, absl::Seconds(10)));
  int pongs = 0;
  std::optional<Json> error;
  int close_code = 0;
  while (auto f = c->ReadFrame()) {
    if (f->opcode == kPong) ++pongs;
    if (f->opcode == kText) error = Json::parse(f->payload);
    if (f->opcode == kClose) {
      close_code = CloseCode(f->payload);
      break;
    }
  }
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ((*error)["code"], "rate_limited");
  EXPECT_EQ(close_code, 1008);
  EXPECT_LT(pongs, 40);
}

// A client that sends pings and never reads: the pongs have nowhere to go, so the server
// stops reading until its socket drains, and the client's sends stall in TCP, instead
// of the server queueing pongs without bound.
TEST_F(WsServerTest, PingFloodMeetsBackPressure) {
  WsOptions o = Defaults();
  o.max_client_frames_per_sec = 0;  // no rate limit: only back-pressure may stop it
  Start(o);
  auto c = SmallBufferedClient(SO_SNDBUF);
  ASSERT_NE(c, nullptr);
  const std::string ping = MaskedFrame(kPing, std::string(125, 'p'));
  // Pongs to this many pings would be more than 100 MB, held by the server.
  constexpr size_t kLimit = 100 << 20;
  size_t sent = 0;
  bool stalled = false;
  while (sent < kLimit) {
    const ssize_t n = c->SendSome(std::string_view(ping).substr(sent % ping.size()));
    ASSERT_GE(n, 0) << "send: " << strerror(errno);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (!c->WaitWritable(absl::Seconds(1))) {
      stalled = true;
      break;
    }
  }
  ASSERT_TRUE(stalled) << "the server read " << sent << " bytes of pings it could not answer";
  EXPECT_LT(sent, size_t{8} << 20);
  // Reading again, the client gets a pong for every ping it sent.
  std::thread writer([&] {
    EXPECT_TRUE(c->SendAll(
        std::string_view(ping).substr(sent % ping.size() == 0 ? ping.size() : sent % ping.size()),
        absl::Seconds(30)));
  });
  const size_t pings = (sent + ping.size() - 1) / ping.size();
  size_t pongs = 0;
  while (pongs < pings) {
    auto f = c->ReadFrame();
    ASSERT_TRUE(f.has_value()) << pongs << " of " << pings << " pongs";
    ASSERT_EQ(f->opcode, kPong);
    ++pongs;
  }
  writer.join();
}

// A client rate-limited that floods on instead of answering the close frame: the close
// handshake reads no more than the teardown's drain would (16 MiB), then cuts the
// socket, rather than reading the flood for the whole close deadline.
TEST_F(WsServerTest, AFloodAfterTheCloseIsCut) {
  WsOptions o = Defaults();
  o.max_client_frames_per_sec = 5;
  o.client_frame_burst = 10;
  o.handshake_timeout = absl::Seconds(60);
  Start(o);
  auto c = RawClient::Connect(server_->port(), 1 << 20);
  ASSERT_NE(c, nullptr);
  const std::string ping = MaskedFrame(kPing, std::string(125, 'p'));
  std::string burst;
  for (int i = 0; i < 64; ++i) burst += ping;
  // Without the bound the server would read the flood for 60 s: far past this.
  constexpr size_t kLimit = size_t{256} << 20;
  size_t sent = 0;
  bool cut = false;
  while (sent < kLimit) {
    const ssize_t n = c->SendSome(std::string_view(burst).substr(sent % burst.size()));
    if (n < 0) {
      cut = errno == ECONNRESET || errno == EPIPE;
      break;
    }
    sent += static_cast<size_t>(n);
    if (n == 0 && !c->WaitWritable(absl::Seconds(20))) break;
  }
  EXPECT_TRUE(cut) << "sent " << sent << " bytes: " << strerror(errno);
  EXPECT_LT(sent, size_t{64} << 20);
}

// Clients that send a frame and reset the connection at once: the server's reply finds
// the socket reset, and the session ends there. Nothing reads the socket after the
// server closed it (which logged "read: Bad file descriptor" once per such client).
TEST_F(WsServerTest, ResetSocketsEndWithoutReadingAClosedSocket) {
  Start();
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 50; ++i) {
    auto c = RawClient::Connect(server_->port(), 1 << 20);
    ASSERT_NE(c, nullptr);
    std::string frames;
    for (int j = 0; j < 20; ++j) frames += MaskedFrame(kText, R"({"op":"ping"})");
    ASSERT_TRUE(c->SendAll(frames, absl::Seconds(10)));
    // A close with a zero linger time is a reset.
    linger reset{1, 0};
    setsockopt(c->fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  }
  EXPECT_TRUE(WaitFor([&] { return server_->session_objects() == 0; }));
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log.find("Bad file descriptor"), std::string::npos) << log;
}

// Bytes the client sent in the same write as its upgrade request belong to the
// WebSocket: a ping and a subscribe right behind the request are answered.
TEST_F(WsServerTest, FramesSentWithTheUpgradeAreRead) {
  Start();
  auto c = RawClient::Connect(server_->port(), 1 << 20,
                              MaskedFrame(kPing, "early") +
                                  MaskedFrame(kText, R"({"op":"subscribe","channels":["early"]})"));
  ASSERT_NE(c, nullptr);
  auto pong = c->ReadFrame();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->opcode, kPong);
  EXPECT_EQ(pong->payload, "early");
  auto s = c->ReadOp("subscribed");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ((*s)["channel"], "early");
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

// A publish goes through Redis: its receiver count is Redis', and a subscriber of the
// channel gets the payload back, bytes intact.
TEST_F(WsServerTest, PublishWhenAllowed) {
  WsOptions o = Defaults();
  o.allow_publish = true;
  Start(o);
  auto reader = Client("/ws?channel=out");
  ASSERT_NE(reader, nullptr);
  ASSERT_TRUE(reader->ReadOp("subscribed").ok());
  auto c = Client();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", "out"}, {"data", "hi"}}));
  auto p = c->ReadOp("published");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)["channel"], "out");
  EXPECT_EQ((*p)["receivers"], 1);
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", "out"}, {"data_b64", "AP8="}}));
  p = c->ReadOp("published");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)["receivers"], 1);
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", "nobody"}, {"data", "void"}}));
  p = c->ReadOp("published");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)["channel"], "nobody");
  EXPECT_EQ((*p)["receivers"], 0);

  auto m = reader->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data"], "hi");
  m = reader->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data_b64"], "AP8=");
}

// A publish with an idempotency key is made once per channel and key; a retry is answered
// "duplicate" and reaches no one.
TEST_F(WsServerTest, PublishWithAKeyIsMadeOnce) {
  WsOptions o = Defaults();
  o.allow_publish = true;
  Start(o);
  auto reader = Client("/ws?channel=out");
  ASSERT_NE(reader, nullptr);
  ASSERT_TRUE(reader->ReadOp("subscribed").ok());
  auto c = Client();
  ASSERT_NE(c, nullptr);
  const std::string key = absl::StrCat("ws-key-", ::getpid(), "-", absl::ToUnixNanos(absl::Now()));
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK(c->SendJson(
        {{"op", "publish"}, {"channel", "out"}, {"data", "once"}, {"idempotency_key", key}}));
  }
  auto p = c->ReadOp("published");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)["receivers"], 1);
  EXPECT_FALSE(p->contains("duplicate")) << p->dump();
  p = c->ReadOp("published");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)["receivers"], 0);
  EXPECT_EQ((*p)["duplicate"], true);
  ASSERT_OK(
      c->SendJson({{"op", "publish"}, {"channel", "out"}, {"data", "x"}, {"idempotency_key", 7}}));
  auto e = c->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "bad_field");
  EXPECT_EQ((*e)["request"], "publish");
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", "out"}, {"data", "after"}}));
  ASSERT_TRUE(c->ReadOp("published").ok());

  auto m = reader->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data"], "once");
  m = reader->ReadOp("message");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)["data"], "after");
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
  EXPECT_EQ(redis_.NumSub("quiet"), 1);
  // `idle` reads no more, so it answers no ping; `live` keeps reading (and answering).
  const absl::Time start = absl::Now();
  ASSERT_TRUE(WaitFor(
      [&] {
        EXPECT_TRUE(live->Barrier().ok());
        return server_->session_count() == 1;
      },
      absl::Seconds(10)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  // Released down to Redis: the hub forgets the topic once Redis confirmed the
  // UNSUBSCRIBE.
  EXPECT_TRUE(WaitFor([&] { return hub_->Stats().topics() == 0; }));
  EXPECT_EQ(redis_.NumSub("quiet"), 0);
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
  EXPECT_TRUE(WaitFor([&] { return redis_.NumSub("x") == 0; }));
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
  // In rounds smaller than the queue, each read in full by the fast socket: it is never
  // behind by more than its queue holds, whatever the machine's load.
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kPerRound; ++i) ASSERT_EQ(redis_.Publish("firehose", payload), 1);
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
    for (int i = 0; i < 25; ++i) ASSERT_GE(redis_.Publish("firehose", payload), 1);
    for (int i = 0; i < 25; ++i, ++expected) {
      auto m = fast->Read();
      ASSERT_TRUE(m.ok()) << m.status();
      ASSERT_EQ((*m)["seq"], expected);
    }
  }
  ASSERT_TRUE(WaitFor([&] { return server_->session_count() == 1; }));
  ASSERT_OK(fast->Barrier());
  EXPECT_EQ(redis_.NumSub("firehose"), 1);
}

// Under --slow_consumer=disconnect the hub drops the socket at once: it leaves the
// subscriber count then, not once its close handshake ends, and when the client reads
// again it gets the slow_consumer error and the 1008 close frame.
TEST_F(WsServerTest, SlowConsumerLeavesTheHubAtOnceAndGets1008) {
  WsOptions o = Defaults();
  o.subscriber.max_queued_messages = 50;
  o.subscriber.policy = hub::SlowConsumerPolicy::kDisconnect;
  o.handshake_timeout = absl::Seconds(60);  // the close deadline: far
  Start(o);
  auto slow = Client();
  auto fast = Client();
  ASSERT_NE(slow, nullptr);
  ASSERT_NE(fast, nullptr);
  Subscribe(*slow, "firehose");
  Subscribe(*fast, "firehose");
  const std::string payload(16 << 10, 'p');
  int expected = 1;
  for (int round = 0; round < 40 && hub_->Stats().subscribers == 2; ++round) {
    for (int i = 0; i < 25; ++i) ASSERT_GE(redis_.Publish("firehose", payload), 1);
    for (int i = 0; i < 25; ++i, ++expected) {
      auto m = fast->Read();
      ASSERT_TRUE(m.ok()) << m.status();
      ASSERT_EQ((*m)["seq"], expected);
    }
  }
  ASSERT_TRUE(WaitFor([&] { return hub_->Stats().subscribers == 1; }, absl::Seconds(5)));
  // The WebSocket count (bridge_subscribers{frontend="websocket"}) with it.
  EXPECT_EQ(server_->session_count(), 1u);
  bool told = false;
  while (true) {
    auto m = slow->Read(absl::Seconds(20));
    if (!m.ok()) break;
    if ((*m)["op"] == "error") {
      EXPECT_EQ((*m)["code"], "slow_consumer");
      told = true;
    }
  }
  EXPECT_TRUE(told);
  EXPECT_EQ(slow->close_code(), 1008) << slow->last_error();
  ASSERT_OK(fast->Barrier());
}

// A slow consumer dropped by the hub is no longer among the server's sessions while its
// close waits for a socket that does not drain: a shutdown then neither waits for it nor
// leaves it behind its loop.
TEST_F(WsServerTest, ShutdownEndsADroppedSlowConsumerStillClosing) {
  WsOptions o = Defaults();
  o.subscriber.max_queued_messages = 50;
  o.subscriber.policy = hub::SlowConsumerPolicy::kDisconnect;
  o.handshake_timeout = absl::Seconds(60);
  Start(o);
  auto slow = SmallBufferedClient(SO_SNDBUF);
  ASSERT_NE(slow, nullptr);
  ASSERT_TRUE(slow->SendFrame(kText, R"({"op":"subscribe","channels":["firehose"]})"));
  ASSERT_TRUE(slow->ReadOp("subscribed").has_value());
  const std::string payload(16 << 10, 'p');
  for (int i = 0; i < 200 && hub_->Stats().subscribers == 1; ++i) {
    ASSERT_GE(redis_.Publish("firehose", payload), 0);
  }
  ASSERT_TRUE(WaitFor([&] { return hub_->Stats().subscribers == 0; }));
  // The session leaves on its loop, once told; long before its close could end (60 s).
  EXPECT_TRUE(WaitFor([&] { return server_->session_count() == 0; }, absl::Seconds(5)));
  EXPECT_EQ(server_->session_objects(), 1u);  // closing, behind a full socket
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(5));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  server_.reset();  // the loops, and the session with them
}

// A client that sends without reading cannot make the server buffer replies without
// bound: once the server's socket is full it reads no more frames (an unsubscribe of
// 256 names is 256 replies), so the client's own sends stall in TCP. When the client
// reads again, every frame it sent is answered, in order.
TEST_F(WsServerTest, ClientThatDoesNotReadMeetsBackPressure) {
  WsOptions o = Defaults();
  o.max_client_frames_per_sec = 0;  // no rate limit: only back-pressure may stop it
  Start(o);
  // The server's receive buffer, fixed and small: what it holds unread stays far below
  // the limit below.
  auto c = SmallBufferedClient(SO_RCVBUF);
  ASSERT_NE(c, nullptr);

  Json names = Json::array();
  for (int i = 0; i < 256; ++i) names.push_back(absl::StrCat(std::string(200, 'n'), i));
  const std::string frame =
      MaskedFrame(kText, Json{{"op", "unsubscribe"}, {"channels", names}}.dump());
  // Replies to this much would be more than 40 MB, held by the server.
  constexpr size_t kLimit = 32 << 20;
  size_t sent = 0;
  bool stalled = false;
  while (sent < kLimit) {
    const ssize_t n = c->SendSome(std::string_view(frame).substr(sent % frame.size()));
    ASSERT_GE(n, 0) << "send: " << strerror(errno);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (!c->WaitWritable(absl::Seconds(1))) {
      stalled = true;
      break;
    }
  }
  ASSERT_TRUE(stalled) << "the server read " << sent << " bytes of frames it could not answer";
  EXPECT_EQ(server_->session_count(), 1u);

  // Reading again: the rest of the partial frame and a ping go out as the server reads.
  const size_t frames = (sent + frame.size() - 1) / frame.size();
  std::thread writer([&] {
    EXPECT_TRUE(c->SendAll(std::string_view(frame).substr(
                               sent % frame.size() == 0 ? frame.size() : sent % frame.size()),
                           absl::Seconds(30)));
    EXPECT_TRUE(c->SendFrame(kText, R"({"op":"ping"})"));
  });
  size_t unsubscribed = 0;
  while (auto f = c->ReadFrame()) {
    const Json j = Json::parse(f->payload, nullptr, false);
    if (j["op"] == "pong") break;
    ASSERT_EQ(j["op"], "unsubscribed") << f->payload.substr(0, 200);
    EXPECT_EQ(j["channel"], names[unsubscribed % 256]);
    ++unsubscribed;
  }
  writer.join();
  EXPECT_EQ(unsubscribed, frames * 256);
}

// RFC 6455 5.5.1: no data frame after the close frame. The peer starts the close while
// the server's socket is full and the hub still holds messages for it: Beast's close
// frame waits behind a batch, and the session must not append more after it.
TEST_F(WsServerTest, NoFrameFollowsTheCloseFrame) {
  WsOptions o = Defaults();
  o.subscriber.max_queued_messages = 100000;
  o.subscriber.max_queued_bytes = 256 << 20;
  Start(o);
  // A fixed, small send buffer on the server: far less than one batch of messages.
  int server_fd = -1;
  auto c = SmallBufferedClient(SO_SNDBUF, &server_fd);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->SendFrame(kText, R"({"op":"subscribe","channels":["firehose"]})"));
  ASSERT_TRUE(c->ReadOp("subscribed").has_value());

  const std::string payload(16 << 10, 'p');
  constexpr int kMessages = 300;
  for (int i = 0; i < kMessages; ++i) ASSERT_EQ(redis_.Publish("firehose", payload), 1);
  // The server's socket is full (its queue holds what the client does not read).
  ASSERT_TRUE(WaitFor([&] {
    int queued = 0;
    return ioctl(server_fd, SIOCOUTQ, &queued) == 0 && queued >= (32 << 10);
  }));
  ASSERT_TRUE(c->SendFrame(kClose, std::string("\x03\xe8", 2)));  // 1000, normal

  int messages = 0;
  int close_at = -1;
  int frames = 0;
  while (auto f = c->ReadFrame(absl::Seconds(20))) {
    if (f->opcode == kClose) {
      EXPECT_EQ(close_at, -1) << "a second close frame";
      close_at = frames;
    } else if (close_at >= 0) {
      ADD_FAILURE() << "frame " << frames << " (opcode " << f->opcode << ", "
                    << f->payload.substr(0, 60) << ") after the close frame at " << close_at;
      break;
    } else {
      ++messages;
    }
    ++frames;
  }
  EXPECT_GE(close_at, 0) << "no close frame";
  EXPECT_TRUE(c->eof()) << "the server did not end the connection";
  EXPECT_LE(messages, kMessages);
  // The server's TCP teardown ends when we close our side.
  c.reset();
  ASSERT_TRUE(WaitFor([&] { return server_->session_count() == 0; }));
}

// A publish still with Redis when the server shuts down: its answer comes after the
// loops' io_contexts are gone, and must find no session to post to or destroy. The
// session is gone once Shutdown returns (the callback holds it weakly).
TEST_F(WsServerTest, PublishPendingAtShutdownKeepsNoSession) {
  auto c = PublisherWithRedisPaused();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", "later"}, {"data", "x"}}));
  ASSERT_OK(c->Barrier());  // the publish was handed to the hub
  std::thread stopper([&] { server_->Shutdown(absl::Seconds(5)); });
  auto code = c->ReadUntilClosed();
  stopper.join();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1001);
  EXPECT_EQ(server_->session_objects(), 0u);
  // Redis answers now, on the upstream's thread, to a server without loops.
  ASSERT_TRUE(redis_.Command({"CLIENT", "UNPAUSE"}).ok());
  ASSERT_TRUE(WaitFor([&] { return redis_.Publish("probe", "x") == 0; }));
}

// Answers to publishes come in the order of the publishes, refusals included, so that
// a client pairs them first in, first out; errors that answer a publish say so.
TEST_F(WsServerTest, PublishAnswersKeepRequestOrder) {
  auto c = PublisherWithRedisPaused();
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", "first"}, {"data", "x"}}));
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", ""}, {"data", "x"}}));
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", 7}, {"data", "x"}}));
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", std::string(300, 'l')}, {"data", "x"}}));
  ASSERT_OK(c->SendJson({{"op", "publish"}, {"channel", "last"}, {"data", "x"}}));
  ASSERT_OK(c->SendJson({{"op", "subscribe"}, {"channels", {""}}}));
  // Every frame was handled; the refusals wait behind the first publish.
  auto e = c->ReadOp("error");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)["code"], "bad_channel");
  EXPECT_FALSE(e->contains("request")) << "the subscribe's error is no publish's answer";
  ASSERT_OK(c->Barrier());
  ASSERT_TRUE(redis_.Command({"CLIENT", "UNPAUSE"}).ok());

  std::vector<std::string> answers;
  while (answers.size() < 5) {
    auto f = c->Read();
    ASSERT_TRUE(f.ok()) << f.status();
    if ((*f)["op"] == "published") {
      answers.push_back(absl::StrCat("published ", (*f)["channel"].get<std::string>()));
    } else if ((*f)["op"] == "error") {
      EXPECT_EQ((*f)["request"], "publish") << f->dump();
      answers.push_back((*f)["code"].get<std::string>());
    }
  }
  EXPECT_EQ(answers, (std::vector<std::string>{"published first", "bad_channel", "bad_field",
                                               "bad_channel", "published last"}));
}

}  // namespace
}  // namespace bridge::ws
