#include "bench/fanout/ws_frame_reader.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace bridge::bench {
namespace {

// An unmasked server frame, with the shortest length form that fits.
std::string ServerFrame(int opcode, const std::string& payload, bool fin = true) {
  std::string f(1, static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint64_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(n);
  } else if (n < 65536) {
    f += static_cast<char>(126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((n >> (8 * i)) & 0xff);
  }
  return f + payload;
}

void Feed(WsFrameReader& r, const std::string& bytes) {
  auto space = r.Space(bytes.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  r.Commit(bytes.size());
}

TEST(WsFrameReaderTest, EveryLengthFormManyFramesPerRead) {
  WsFrameReader r;
  const std::string a(5, 'a'), b(300, 'b'), c(70000, 'c');
  Feed(r, ServerFrame(1, a) + ServerFrame(1, b) + ServerFrame(9, "") + ServerFrame(1, c));
  auto f = r.Next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 1);
  EXPECT_EQ(f->payload, a);
  f = r.Next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, b);
  f = r.Next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 9);
  EXPECT_TRUE(f->payload.empty());
  f = r.Next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, c);
  EXPECT_FALSE(r.Next());
}

TEST(WsFrameReaderTest, FrameSplitAcrossReadsByteByByte) {
  WsFrameReader r;
  const std::string bytes = ServerFrame(1, std::string(200, 'x')) + ServerFrame(1, "tail");
  int frames = 0;
  for (char ch : bytes) {
    Feed(r, std::string(1, ch));
    while (auto f = r.Next()) {
      ++frames;
      EXPECT_EQ(f->payload, frames == 1 ? std::string(200, 'x') : "tail");
    }
  }
  EXPECT_EQ(frames, 2);
  EXPECT_TRUE(r.error().empty());
}

TEST(WsFrameReaderTest, MaskedOrOversizedFramesAreErrors) {
  WsFrameReader masked;
  Feed(masked, std::string("\x81\x85\0\0\0\0hello", 11));
  EXPECT_FALSE(masked.Next());
  EXPECT_FALSE(masked.error().empty());

  WsFrameReader small(100);
  Feed(small, ServerFrame(1, std::string(101, 'x')));
  EXPECT_FALSE(small.Next());
  EXPECT_FALSE(small.error().empty());
}

TEST(WsFrameReaderTest, FragmentsAreReportedNotJoined) {
  WsFrameReader r;
  Feed(r, ServerFrame(1, "part", false) + ServerFrame(0, "rest"));
  auto f = r.Next();
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->fin);
  f = r.Next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 0);
}

}  // namespace
}  // namespace bridge::bench
