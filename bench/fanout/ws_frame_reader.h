#ifndef BRIDGE_BENCH_FANOUT_WS_FRAME_READER_H_
#define BRIDGE_BENCH_FANOUT_WS_FRAME_READER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bridge::bench {

// Splits what a WebSocket server sends (unmasked frames, RFC 6455 section 5.2) into
// frames, in place: the load generator reads many frames with one read and parses them
// without copying. Frames are not reassembled: the servers measured send each message as
// one frame, and a fragment is reported as such.
class WsFrameReader {
 public:
  struct Frame {
    bool fin;
    int opcode;
    std::string_view payload;
  };

  explicit WsFrameReader(size_t max_frame = 64 << 20) : max_frame_(max_frame) {}

  // Where the next read goes: at least `min` bytes. Views from Next end here.
  std::span<char> Space(size_t min = 16 << 10);
  // `n` bytes were read into the last Space.
  void Commit(size_t n) { end_ += n; }
  // The next whole frame buffered, if any. Once error() is set, nothing more.
  std::optional<Frame> Next();
  // Why the stream cannot be parsed (a masked or oversized frame), or empty.
  const std::string& error() const { return error_; }

 private:
  const size_t max_frame_;
  std::vector<char> buf_;
  size_t begin_ = 0;
  size_t end_ = 0;
  std::string error_;
};

}  // namespace bridge::bench

#endif  // BRIDGE_BENCH_FANOUT_WS_FRAME_READER_H_
