// CoalescingStream on a real loopback TCP connection: what it is given arrives whole and
// in order, at once while the socket drains and through the owner's callback once the
// peer's buffers are full and it starts reading again.
#include "bridge/ws/coalescing_stream.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace bridge::ws {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::beast::error_code;

class RecordingOwner : public CoalescingStream::Owner {
 public:
  void OnStreamFlushed(error_code ec) override {
    ++flushed;
    last = ec;
  }
  int flushed = 0;
  error_code last;
};

class CoalescingStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    tcp::socket server(asio::make_strand(io_));
    peer_.connect(acceptor.local_endpoint());
    acceptor.accept(server);
    // Small buffers on both sides, so that the test fills them quickly.
    server.set_option(asio::socket_base::send_buffer_size(16 << 10));
    peer_.set_option(asio::socket_base::receive_buffer_size(16 << 10));
    stream_ = std::make_unique<CoalescingStream>(boost::beast::tcp_stream(std::move(server)));
    stream_->set_owner(owner_);
  }

  // Reads exactly n bytes from the peer, on this thread (the peer socket is blocking).
  std::string PeerRead(size_t n) {
    std::string got(n, '\0');
    asio::read(peer_, asio::buffer(got));
    return got;
  }

  // Runs handlers until the owner hears of the flush, for at most ten seconds.
  bool RunUntilFlushed() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (owner_->flushed == 0 && std::chrono::steady_clock::now() < deadline) {
      io_.run_one_until(deadline);
    }
    return owner_->flushed > 0;
  }

  asio::io_context io_;
  tcp::socket peer_{io_};
  std::shared_ptr<RecordingOwner> owner_ = std::make_shared<RecordingOwner>();
  std::unique_ptr<CoalescingStream> stream_;
};

TEST_F(CoalescingStreamTest, DrainingSocketTakesTheBatchAtOnce) {
  auto big = std::make_shared<std::string>(5000, 'B');
  stream_->AppendFrame(nullptr, "small-1|");
  stream_->AppendFrame(big, *big);
  stream_->AppendFrame(nullptr, "small-2|");
  EXPECT_TRUE(stream_->Flush());
  EXPECT_FALSE(stream_->error());
  EXPECT_EQ(PeerRead(8 + 5000 + 8), "small-1|" + *big + "small-2|");
  // Written at once: the owner is not called back.
  io_.poll();
  EXPECT_EQ(owner_->flushed, 0);
}

TEST_F(CoalescingStreamTest, FullSocketFinishesThroughTheOwnerInOrder) {
  // Far more than the two buffers hold, in frames of both kinds, each one numbered.
  std::string expected;
  auto big = std::make_shared<std::string>(3000, 'L');
  bool went_async = false;
  for (int i = 0; i < 2000; ++i) {
    const std::string small = absl::StrCat("<", i, ">");
    stream_->AppendFrame(nullptr, small);
    stream_->AppendFrame(big, *big);
    expected += small + *big;
    if (i % 100 == 99 && !stream_->Flush()) went_async = true;
  }
  ASSERT_TRUE(went_async);
  // Appended while the socket is full: goes out after what came before.
  stream_->AppendTextFrame(R"({"op":"last"})");
  EXPECT_FALSE(stream_->Flush());
  const std::string last_frame = std::string("\x81\x0d") + R"({"op":"last"})";
  expected += last_frame;

  std::string got;
  std::thread reader([&] { got = PeerRead(expected.size()); });
  const bool flushed = RunUntilFlushed();
  reader.join();
  ASSERT_TRUE(flushed);
  EXPECT_EQ(owner_->flushed, 1);
  EXPECT_FALSE(owner_->last);
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected);
  // Drained: the next batch is written at once again.
  stream_->AppendFrame(nullptr, "again");
  EXPECT_TRUE(stream_->Flush());
  EXPECT_EQ(PeerRead(5), "again");
}

TEST_F(CoalescingStreamTest, PeerGoneIsAnError) {
  peer_.close();
  const std::string chunk(4096, 'x');
  bool done = false;
  // The first writes may still be taken by the kernel; a reset peer fails them soon.
  for (int i = 0; i < 1000 && !done; ++i) {
    stream_->AppendFrame(nullptr, chunk);
    if (!stream_->Flush()) {
      ASSERT_TRUE(RunUntilFlushed());
      EXPECT_TRUE(owner_->last);
      done = true;
    } else if (stream_->error()) {
      done = true;
    }
  }
  ASSERT_TRUE(done);
  EXPECT_TRUE(stream_->error());
  // Once failed, the stream takes nothing and says so at once.
  stream_->AppendFrame(nullptr, "ignored");
  EXPECT_TRUE(stream_->Flush());
}

}  // namespace
}  // namespace bridge::ws
