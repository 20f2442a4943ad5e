#ifndef BRIDGE_WS_COALESCING_STREAM_H_
#define BRIDGE_WS_COALESCING_STREAM_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "boost/asio/associated_executor.hpp"
#include "boost/asio/async_result.hpp"
#include "boost/asio/buffer.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/bind_handler.hpp"
#include "boost/beast/core/error.hpp"
#include "boost/beast/core/role.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/websocket/teardown.hpp"
#include "bridge/ws/server_frame.h"

namespace bridge::ws {

// The layer under a session's websocket::stream through which every byte goes out, so
// that many frames leave in one send.
//
// The session appends whole, ready-made frames (AppendFrame: a message's wire bytes are
// built once and shared by every socket; small ones are copied side by side, large ones
// referenced) and then calls Flush. Beast's own writes (the handshake response, ping, pong, close)
// arrive through async_write_some, are copied whole, and complete at once. The pending frames go to
// the socket in one gather write when no earlier write is still in flight; what comes meanwhile
// waits for the next one. Every frame is appended whole, so frames never interleave on the wire.
//
// Back-pressure stays with the session: it appends a batch, then waits for async_flush
// before taking the next, so a socket that does not drain holds at most one batch here.
//
// Not thread-safe: every call and completion runs on the session's strand, the executor
// of the wrapped stream.
class CoalescingStream {
 public:
  using next_layer_type = boost::beast::tcp_stream;
  using executor_type = next_layer_type::executor_type;
  using error_code = boost::beast::error_code;

  explicit CoalescingStream(next_layer_type&& next) : next_(std::move(next)) {}

  executor_type get_executor() noexcept { return next_.get_executor(); }
  next_layer_type& next_layer() noexcept { return next_; }

  // Flush completions keep `owner` (the session that owns this stream) alive. Must be set
  // before the first write: a flush without an owner is never completed.
  void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

  // Appends one complete frame. A small one is copied (next to its neighbours, so that a
  // batch of small frames is one buffer); a large one is referenced, and `keep` holds its
  // bytes alive until they are on the socket. It goes out at the next Flush (or with a
  // write of Beast's). Ignored once the stream has failed.
  void AppendFrame(std::shared_ptr<const void> keep, std::string_view wire_bytes) {
    if (error_) return;
    if (wire_bytes.size() < kCopyBelow) return AppendCopy(wire_bytes);
    pending_.push_back({std::move(keep), wire_bytes.data(), 0, wire_bytes.size()});
  }
  // Appends `json` framed as one text message, copied.
  void AppendTextFrame(std::string_view json) {
    if (error_) return;
    const size_t before = pending_bytes_.size();
    AppendWireTextFrame(&pending_bytes_, json);
    NoteCopied(before);
  }
  // Starts sending what is pending, unless a send is in flight (then it follows that one).
  void Flush() { MaybeFlush(); }
  // Nothing to send, or nothing more can be: the stream failed.
  bool Idle() const { return error_ || (!flushing_ && pending_.empty()); }
  // Forgets the frames not yet handed to the socket: for a peer that stopped reading.
  void DiscardPending() {
    pending_.clear();
    pending_bytes_.clear();
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return next_.async_read_some(buffers, std::forward<Token>(token));
  }

  // Takes every byte (or fails with the error of an earlier flush) and completes through
  // the handler's executor, never inline.
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& buffers) {
          std::size_t taken = 0;
          if (!error_) {
            // Beast's buffers are its own: copied, whatever their size.
            const size_t before = pending_bytes_.size();
            for (auto it = boost::asio::buffer_sequence_begin(buffers);
                 it != boost::asio::buffer_sequence_end(buffers); ++it) {
              const boost::asio::const_buffer b(*it);
              pending_bytes_.append(static_cast<const char*>(b.data()), b.size());
            }
            taken = pending_bytes_.size() - before;
            NoteCopied(before);
            MaybeFlush();
          }
          auto ex = boost::asio::get_associated_executor(handler, get_executor());
          boost::asio::post(ex,
                            boost::beast::bind_front_handler(std::move(handler), error_, taken));
        },
        token, buffers);
  }

  // Completes once everything written so far is on the socket (or failed to get there).
  template <class Token>
  auto async_flush(Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code)>(
        [this](auto handler) {
          if (Idle()) {
            auto ex = boost::asio::get_associated_executor(handler, get_executor());
            boost::asio::post(ex, boost::beast::bind_front_handler(std::move(handler), error_));
            return;
          }
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          waiters_.push_back([shared, ex = get_executor()](error_code ec) {
            auto hex = boost::asio::get_associated_executor(*shared, ex);
            boost::asio::post(hex, boost::beast::bind_front_handler(std::move(*shared), ec));
          });
        },
        token);
  }

 private:
  // A run of bytes to send: either `size` bytes at `data`, kept alive by `keep`, or (data
  // null) `size` bytes at `offset` in the copied bytes of the same batch.
  struct Segment {
    std::shared_ptr<const void> keep;
    const char* data;
    size_t offset;
    size_t size;
  };

  void AppendCopy(std::string_view bytes) {
    const size_t before = pending_bytes_.size();
    pending_bytes_.append(bytes);
    NoteCopied(before);
  }

  // Accounts for the bytes copied from `before` on: they extend the last segment when that
  // one is copied bytes too.
  void NoteCopied(size_t before) {
    const size_t n = pending_bytes_.size() - before;
    if (!pending_.empty() && pending_.back().data == nullptr) {
      pending_.back().size += n;
    } else {
      pending_.push_back({nullptr, nullptr, before, n});
    }
  }

  void MaybeFlush() {
    if (flushing_ || pending_.empty() || error_) return;
    flushing_ = true;
    sending_.swap(pending_);
    sending_bytes_.swap(pending_bytes_);
    gather_.clear();
    for (const Segment& s : sending_) {
      gather_.emplace_back(s.data != nullptr ? s.data : sending_bytes_.data() + s.offset, s.size);
    }
    // One gather write (writev) of every frame gathered since the last one.
    boost::asio::async_write(next_, gather_,
                             [this, keep = owner_.lock()](error_code ec, std::size_t) {
                               if (keep != nullptr) OnFlushed(ec);
                             });
  }

  void OnFlushed(error_code ec) {
    flushing_ = false;
    sending_.clear();
    sending_bytes_.clear();
    if (ec) error_ = ec;
    MaybeFlush();
    if (!Idle()) return;
    // Quiet now: a connection between bursts keeps no buffers (most connections, most of
    // the time). A busy one keeps them from batch to batch.
    ReleaseBuffers();
    std::vector<std::function<void(error_code)>> waiters;
    waiters.swap(waiters_);
    for (auto& w : waiters) w(error_);
  }

  void ReleaseBuffers() {
    std::vector<Segment>().swap(pending_);
    std::vector<Segment>().swap(sending_);
    std::vector<boost::asio::const_buffer>().swap(gather_);
    std::string().swap(pending_bytes_);
    std::string().swap(sending_bytes_);
  }

  // Frames below this size are copied: cheaper than a reference and an iovec of their own.
  static constexpr std::size_t kCopyBelow = 1024;

  next_layer_type next_;
  std::weak_ptr<void> owner_;
  std::vector<Segment> pending_;
  std::string pending_bytes_;
  std::vector<Segment> sending_;
  std::string sending_bytes_;
  std::vector<boost::asio::const_buffer> gather_;
  bool flushing_ = false;
  error_code error_;
  std::vector<std::function<void(error_code)>> waiters_;
};

// Beast closes a WebSocket through these (found by argument-dependent lookup): what is
// still pending goes out first, then the TCP teardown of the wrapped stream.
template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, CoalescingStream& stream,
                    TeardownHandler&& handler) {
  stream.async_flush([&stream, role, handler = std::forward<TeardownHandler>(handler)](
                         boost::beast::error_code) mutable {
    using boost::beast::websocket::async_teardown;
    async_teardown(role, stream.next_layer(), std::move(handler));
  });
}

}  // namespace bridge::ws

#endif  // BRIDGE_WS_COALESCING_STREAM_H_
