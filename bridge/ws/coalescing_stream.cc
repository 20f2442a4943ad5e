#include "bridge/ws/coalescing_stream.h"

#include <span>

#include "boost/asio/error.hpp"
#include "boost/asio/socket_base.hpp"
#include "bridge/ws/server_frame.h"

namespace bridge::ws {

struct CoalescingStream::Batch {
  // A run of bytes to send: either `size` bytes at `data`, kept alive by `keep`, or (data
  // null) `size` bytes at `offset` in `bytes`.
  struct Segment {
    std::shared_ptr<const void> keep;
    const char* data;
    size_t offset;
    size_t size;
  };

  std::vector<Segment> segments;
  std::string bytes;
  // Built when the batch starts sending; iov[next] is the first not wholly written.
  std::vector<boost::asio::const_buffer> iov;
  size_t next = 0;

  void Clear() {
    segments.clear();
    bytes.clear();
    iov.clear();
    next = 0;
  }
};

namespace {

using Batch = CoalescingStream::Batch;

// Frames below this size are copied: cheaper than a reference and an iovec of their own.
constexpr size_t kCopyBelow = 1024;
// The pool keeps this many batches per thread, none larger than kPooledBytes: enough for
// the sessions one thread writes to in a row, small next to a burst's own memory.
constexpr size_t kPoolSize = 64;
constexpr size_t kPooledBytes = 64 * 1024;
constexpr size_t kPooledSegments = 256;

std::vector<std::unique_ptr<Batch>>& Pool() {
  thread_local std::vector<std::unique_ptr<Batch>> pool;
  return pool;
}

std::unique_ptr<Batch> TakeBatch() {
  auto& pool = Pool();
  if (pool.empty()) return std::make_unique<Batch>();
  std::unique_ptr<Batch> b = std::move(pool.back());
  pool.pop_back();
  return b;
}

void GiveBatch(std::unique_ptr<Batch> b) {
  if (b == nullptr) return;
  b->Clear();
  auto& pool = Pool();
  if (pool.size() >= kPoolSize || b->bytes.capacity() > kPooledBytes ||
      b->segments.capacity() > kPooledSegments || b->iov.capacity() > kPooledSegments) {
    return;
  }
  pool.push_back(std::move(b));
}

}  // namespace

CoalescingStream::CoalescingStream(next_layer_type&& next) : next_(std::move(next)) {
  // Writes are tried at once and must not block the thread: a full socket answers
  // would_block, and the rest waits for it to drain.
  next_.socket().non_blocking(true, error_);
}

// Buffers are freed, not pooled: the thread's pool may already be gone at exit.
CoalescingStream::~CoalescingStream() = default;

CoalescingStream::Batch& CoalescingStream::Pending() {
  if (pending_ == nullptr) pending_ = TakeBatch();
  return *pending_;
}

void CoalescingStream::AppendFrame(std::shared_ptr<const void> keep, std::string_view wire_bytes) {
  if (error_) return;
  if (wire_bytes.size() < kCopyBelow) return AppendCopy(wire_bytes);
  Pending().segments.push_back({std::move(keep), wire_bytes.data(), 0, wire_bytes.size()});
}

void CoalescingStream::AppendTextFrame(std::string_view json) {
  if (error_) return;
  Batch& b = Pending();
  const size_t before = b.bytes.size();
  AppendWireTextFrame(&b.bytes, json);
  NoteCopied(b, before);
}

void CoalescingStream::AppendCopy(std::string_view bytes) {
  Batch& b = Pending();
  const size_t before = b.bytes.size();
  b.bytes.append(bytes);
  NoteCopied(b, before);
}

void CoalescingStream::NoteCopied(Batch& b, size_t before) {
  const size_t n = b.bytes.size() - before;
  // Copied bytes extend the last segment when that one is copied bytes too.
  if (!b.segments.empty() && b.segments.back().data == nullptr) {
    b.segments.back().size += n;
  } else {
    b.segments.push_back({nullptr, nullptr, before, n});
  }
}

bool CoalescingStream::Flush() {
  if (error_) return true;
  if (waiting_) return false;
  if (Drain()) return true;
  waiting_ = true;
  WaitWritable();
  return false;
}

bool CoalescingStream::Drain() {
  while (true) {
    if (sending_ == nullptr) {
      if (pending_ == nullptr) return true;
      sending_ = std::move(pending_);
      Batch& b = *sending_;
      b.iov.reserve(b.segments.size());
      for (const Batch::Segment& s : b.segments) {
        b.iov.emplace_back(s.data != nullptr ? s.data : b.bytes.data() + s.offset, s.size);
      }
    }
    if (!WriteSending()) return false;
    if (error_) {
      ReleaseBuffers();
      return true;
    }
    GiveBatch(std::move(sending_));
  }
}

bool CoalescingStream::WriteSending() {
  Batch& b = *sending_;
  while (b.next < b.iov.size()) {
    // One gather write (writev) of every frame gathered since the last one; Asio passes
    // at most 64 iovecs a call.
    const std::span<const boost::asio::const_buffer> rest(b.iov.data() + b.next,
                                                          b.iov.size() - b.next);
    size_t offered = 0;
    for (size_t i = 0; i < rest.size() && i < 64; ++i) offered += rest[i].size();
    error_code ec;
    size_t n = next_.socket().write_some(rest, ec);
    if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
      return false;
    }
    if (ec) {
      error_ = ec;
      return true;
    }
    const bool partial = n < offered;
    while (b.next < b.iov.size() && n >= b.iov[b.next].size()) {
      n -= b.iov[b.next].size();
      ++b.next;
    }
    if (n > 0) b.iov[b.next] += n;
    // The send buffer is full: the next try would only say so.
    if (partial) return false;
  }
  return true;
}

void CoalescingStream::WaitWritable() {
  next_.socket().async_wait(boost::asio::socket_base::wait_write,
                            [this, keep = owner_.lock()](error_code ec) {
                              if (keep != nullptr) OnWritable(ec);
                            });
}

void CoalescingStream::OnWritable(error_code ec) {
  if (ec && !error_) error_ = ec;
  if (!error_ && !Drain()) return WaitWritable();
  waiting_ = false;
  if (error_) ReleaseBuffers();
  std::vector<std::function<void(error_code)>> waiters;
  waiters.swap(waiters_);
  for (auto& w : waiters) w(error_);
  if (auto owner = owner_.lock()) owner->OnStreamFlushed(error_);
}

void CoalescingStream::DiscardPending() {
  GiveBatch(std::move(pending_));
  if (sending_ == nullptr) return;
  // The frames of the batch on its way that the socket has not begun to take go too, so
  // that what follows (an error, the close frame) waits for one frame at most. Segments
  // end where frames end: frames are appended whole.
  Batch& b = *sending_;
  size_t keep = b.next;
  if (keep < b.iov.size() && b.iov[keep].size() < b.segments[keep].size) ++keep;
  b.iov.resize(keep);
}

void CoalescingStream::ReleaseBuffers() {
  GiveBatch(std::move(pending_));
  GiveBatch(std::move(sending_));
}

}  // namespace bridge::ws
