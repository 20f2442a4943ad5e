#include "bench/fanout/ws_frame_reader.h"

#include <algorithm>
#include <cstring>

namespace bridge::bench {

std::span<char> WsFrameReader::Space(size_t min) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (buf_.size() - end_ < min && begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buf_.size() - end_ < min) buf_.resize(std::max(end_ + min, 2 * buf_.size()));
  return {buf_.data() + end_, buf_.size() - end_};
}

std::optional<WsFrameReader::Frame> WsFrameReader::Next() {
  if (!error_.empty()) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + begin_);
  const size_t have = end_ - begin_;
  if (have < 2) return std::nullopt;
  if (p[1] & 0x80) {
    error_ = "masked frame from the server";
    return std::nullopt;
  }
  size_t header = 2;
  uint64_t length = p[1] & 0x7f;
  if (length == 126) {
    header = 4;
    if (have < header) return std::nullopt;
    length = (uint64_t{p[2]} << 8) | p[3];
  } else if (length == 127) {
    header = 10;
    if (have < header) return std::nullopt;
    length = 0;
    for (int i = 2; i < 10; ++i) length = (length << 8) | p[i];
  }
  if (length > max_frame_) {
    error_ = "frame of " + std::to_string(length) + " bytes";
    return std::nullopt;
  }
  if (have < header + length) return std::nullopt;
  Frame f{(p[0] & 0x80) != 0, p[0] & 0x0f,
          std::string_view(buf_.data() + begin_ + header, static_cast<size_t>(length))};
  begin_ += header + static_cast<size_t>(length);
  return f;
}

}  // namespace bridge::bench
