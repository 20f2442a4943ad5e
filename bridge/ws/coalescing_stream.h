#ifndef BRIDGE_WS_COALESCING_STREAM_H_
#define BRIDGE_WS_COALESCING_STREAM_H_

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "boost/asio/associated_executor.hpp"
#include "boost/asio/async_result.hpp"
#include "boost/asio/bind_executor.hpp"
#include "boost/asio/buffer.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/socket_base.hpp"
#include "boost/beast/core/bind_handler.hpp"
#include "boost/beast/core/error.hpp"
#include "boost/beast/core/role.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/websocket/teardown.hpp"

namespace bridge::ws {

// The layer under a session's websocket::stream through which every byte goes out, so
// that many frames leave in one send.
//
// The session appends whole, ready-made frames (AppendFrame: a message's wire bytes are
// built once and shared by every socket; small ones are copied side by side, large ones
// referenced) and then calls Flush, which hands them all to the socket in one gather write
// there and then. That is the usual case: a socket that drains takes the batch at once,
// with no asynchronous operation, handler or timer. When the socket's send buffer is full
// the rest goes out as it drains, and the owner hears OnStreamFlushed once all of it is
// written. Beast's own writes (the handshake response, ping, pong, close) arrive through
// async_write_some, are copied whole, go out the same way and complete at once. Frames
// are appended whole, so they never interleave on the wire.
//
// Back-pressure stays with the session: it appends a batch, and when Flush says the socket
// is full it waits for OnStreamFlushed before taking the next, so a socket that does not
// drain holds at most one batch (plus Beast's control frames) here.
//
// Between bursts the stream holds no buffers: they go back to a small per-thread pool
// that the next burst, of any session, takes them from.
//
// Not thread-safe: every call and completion runs on the session's strand, the executor
// of the wrapped stream.
class CoalescingStream {
 public:
  using next_layer_type = boost::beast::tcp_stream;
  using executor_type = next_layer_type::executor_type;
  using error_code = boost::beast::error_code;

  // The session that owns the stream.
  class Owner {
   public:
    // Everything appended so far is on the socket, after Flush returned false; or the
    // stream failed (ec).
    virtual void OnStreamFlushed(error_code ec) = 0;

   protected:
    ~Owner() = default;
  };

  explicit CoalescingStream(next_layer_type&& next);
  ~CoalescingStream();
  CoalescingStream(const CoalescingStream&) = delete;
  CoalescingStream& operator=(const CoalescingStream&) = delete;

  executor_type get_executor() noexcept { return next_.get_executor(); }
  next_layer_type& next_layer() noexcept { return next_; }

  // Completions keep the owner alive and report to it. Must be set before the first
  // write: without an owner a write that has to wait for the socket is never finished.
  void set_owner(std::weak_ptr<Owner> owner) { owner_ = std::move(owner); }

  // Appends one complete frame. A small one is copied (next to its neighbours, so that a
  // batch of small frames is one buffer); a large one is referenced, and `keep` holds its
  // bytes alive until they are on the socket. It goes out at the next Flush (or with a
  // write of Beast's). Ignored once the stream has failed.
  void AppendFrame(std::shared_ptr<const void> keep, std::string_view wire_bytes);
  // Appends `json` framed as one text message, copied.
  void AppendTextFrame(std::string_view json);

  // Writes what is pending. True when it is all on the socket, or the stream has failed
  // (error() says); false when the socket is full and the rest follows as it drains, ended
  // by Owner::OnStreamFlushed.
  bool Flush();
  // The socket is full: what is appended waits for it to drain (Flush returned false
  // and Owner::OnStreamFlushed has not come yet).
  bool waiting() const { return waiting_; }
  // The error that ended the stream's writing, if any.
  error_code error() const { return error_; }
  // Forgets the frames not yet handed to the socket, and those of the batch being written
  // that the socket has not begun: for a peer that stopped reading.
  void DiscardPending();

  // Bytes the peer sent that were read before the stream took the connection over (the
  // ones after the HTTP upgrade request): the first reads return them.
  void set_read_ahead(std::string bytes) { read_ahead_ = std::move(bytes); }

  // Every read of Beast's comes through here, those of the pings it answers by itself
  // included: while the socket is full no read starts (it waits for the socket to drain),
  // so that a peer that sends without reading meets TCP back-pressure instead of Beast's
  // pongs piling up here.
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& buffers) {
          auto ex = boost::asio::get_associated_executor(handler, get_executor());
          if (read_budget_ && *read_budget_ == 0) {
            return boost::asio::post(
                ex, boost::beast::bind_front_handler(
                        std::move(handler), error_code(boost::asio::error::message_size), 0));
          }
          if (!read_ahead_.empty()) {
            const std::size_t n = boost::asio::buffer_copy(
                buffers, boost::asio::buffer(read_ahead_.data(), read_ahead_.size()));
            read_ahead_.erase(0, n);
            if (read_ahead_.empty()) std::string().swap(read_ahead_);
            Spend(n);
            return boost::asio::post(
                ex, boost::beast::bind_front_handler(std::move(handler), error_code(), n));
          }
          if (!read_budget_) return ReadNext(buffers, std::move(handler));
          // Counted as the bytes arrive, on the handler's own executor.
          ReadNext(buffers,
                   boost::asio::bind_executor(ex, [this, handler = std::move(handler)](
                                                      error_code ec, std::size_t n) mutable {
                     Spend(n);
                     handler(ec, n);
                   }));
        },
        token, buffers);
  }

  // From now on the peer may send at most `max_bytes` more: later reads fail with
  // message_size. For a close Bridge starts, whose handshake reads until the peer's close
  // frame: a peer that floods instead meets the same bound as the teardown's drain.
  void LimitReads(std::size_t max_bytes) {
    if (!read_budget_ || *read_budget_ > max_bytes) read_budget_ = max_bytes;
  }

  // Takes every byte (or fails with the stream's error) and completes through the
  // handler's executor, never inline.
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& buffers) {
          std::size_t taken = 0;
          if (!error_) {
            // Beast's buffers are its own: copied, whatever their size.
            for (auto it = boost::asio::buffer_sequence_begin(buffers);
                 it != boost::asio::buffer_sequence_end(buffers); ++it) {
              const boost::asio::const_buffer b(*it);
              AppendCopy(std::string_view(static_cast<const char*>(b.data()), b.size()));
              taken += b.size();
            }
            Flush();
          }
          auto ex = boost::asio::get_associated_executor(handler, get_executor());
          boost::asio::post(ex,
                            boost::beast::bind_front_handler(std::move(handler), error_, taken));
        },
        token, buffers);
  }

  // Completes once everything written so far is on the socket (or failed to get there).
  // For the close: the session itself waits through Owner.
  template <class Token>
  auto async_flush(Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code)>(
        [this](auto handler) {
          if (!waiting_) {
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

  // Ends the connection after a close frame: everything pending goes out, then (as the
  // server) the sending side is shut down, then what the peer still sends is read and
  // dropped until it closes too, at most `max_drain_bytes` or until `drain_timeout`, and
  // the socket is closed. Closing a socket with unread bytes makes the kernel send a
  // reset, which can destroy the close frame on its way to the peer: Beast 1.74's own
  // teardown stops draining after its first read.
  template <class Handler>
  void AsyncTeardown(boost::beast::role_type role, Handler&& handler);

  // Bounds of the drain above.
  void set_teardown_limits(std::size_t max_drain_bytes,
                           std::chrono::steady_clock::duration drain_timeout) {
    max_drain_bytes_ = max_drain_bytes;
    drain_timeout_ = drain_timeout;
  }

  // The frames of one write: runs of bytes, and the iovecs that point at them.
  struct Batch;

 private:
  // A read of the socket, once it has drained.
  template <class MutableBuffers, class Handler>
  void ReadNext(const MutableBuffers& buffers, Handler&& handler) {
    if (!waiting_ || error_) return next_.async_read_some(buffers, std::forward<Handler>(handler));
    auto shared = std::make_shared<std::decay_t<Handler>>(std::forward<Handler>(handler));
    waiters_.push_back([this, shared, buffers, ex = get_executor()](error_code ec) {
      if (!ec) return next_.async_read_some(buffers, std::move(*shared));
      auto hex = boost::asio::get_associated_executor(*shared, ex);
      boost::asio::post(hex, boost::beast::bind_front_handler(std::move(*shared), ec, 0));
    });
  }
  void Spend(std::size_t n) {
    if (read_budget_) *read_budget_ -= std::min(n, *read_budget_);
  }
  void AppendCopy(std::string_view bytes);
  // Accounts for the bytes appended to b.bytes from `before` on.
  void NoteCopied(Batch& b, size_t before);
  Batch& Pending();
  // Writes the sending batch, then the pending ones, until all is written or the stream
  // fails (true) or the socket takes no more (false).
  bool Drain();
  // Writes the sending batch until the socket takes no more (false) or it is all written
  // or failed (true).
  bool WriteSending();
  void WaitWritable();
  void OnWritable(error_code ec);
  void ReleaseBuffers();

  next_layer_type next_;
  std::weak_ptr<Owner> owner_;
  // Appended, not yet handed to the socket; null when empty.
  std::unique_ptr<Batch> pending_;
  // Partly written, the rest waiting for the socket to drain; null unless waiting_.
  std::unique_ptr<Batch> sending_;
  bool waiting_ = false;
  error_code error_;
  // Called once the socket has drained (or failed): async_flush's handlers, and reads
  // that wait for it.
  std::vector<std::function<void(error_code)>> waiters_;
  std::string read_ahead_;
  // What the peer may still send, when limited (LimitReads).
  std::optional<std::size_t> read_budget_;
  std::size_t max_drain_bytes_ = 4 << 20;
  std::chrono::steady_clock::duration drain_timeout_ = std::chrono::seconds(10);
};

namespace coalescing_stream_internal {

// CoalescingStream::AsyncTeardown's drain; owns itself through the handler it passes on.
template <class Handler>
class DrainOp : public std::enable_shared_from_this<DrainOp<Handler>> {
 public:
  DrainOp(boost::beast::tcp_stream& stream, std::size_t max_bytes,
          std::chrono::steady_clock::duration timeout, Handler handler)
      : stream_(stream), max_bytes_(max_bytes), timeout_(timeout), handler_(std::move(handler)) {}

  void Start() {
    stream_.expires_after(timeout_);
    DoRead();
  }

 private:
  void DoRead() {
    stream_.async_read_some(
        boost::asio::buffer(buffer_),
        [self = this->shared_from_this()](boost::beast::error_code ec, std::size_t n) {
          self->OnRead(ec, n);
        });
  }
  void OnRead(boost::beast::error_code ec, std::size_t n) {
    drained_ += n;
    if (!ec && drained_ < max_bytes_) return DoRead();
    // The peer's end of the stream is the clean end; the bounds end it too, but a reset
    // may then follow.
    if (ec == boost::asio::error::eof || !ec) ec = {};
    stream_.expires_never();
    boost::beast::error_code ignored;
    stream_.socket().close(ignored);
    handler_(ec);
  }

  boost::beast::tcp_stream& stream_;
  const std::size_t max_bytes_;
  const std::chrono::steady_clock::duration timeout_;
  Handler handler_;
  std::size_t drained_ = 0;
  std::array<char, 16 << 10> buffer_;
};

}  // namespace coalescing_stream_internal

template <class Handler>
void CoalescingStream::AsyncTeardown(boost::beast::role_type role, Handler&& handler) {
  Flush();
  async_flush([this, role, handler = std::forward<Handler>(handler)](error_code) mutable {
    if (role == boost::beast::role_type::server) {
      error_code ignored;
      next_.socket().shutdown(boost::asio::socket_base::shutdown_send, ignored);
    }
    // Beast's handler must run through its own executor, as any completion does.
    auto ex = boost::asio::get_associated_executor(handler, get_executor());
    auto complete = [ex, handler = std::move(handler)](error_code ec) mutable {
      boost::asio::post(ex, boost::beast::bind_front_handler(std::move(handler), ec));
    };
    std::make_shared<coalescing_stream_internal::DrainOp<decltype(complete)>>(
        next_, max_drain_bytes_, drain_timeout_, std::move(complete))
        ->Start();
  });
}

// Beast closes a WebSocket through these (found by argument-dependent lookup): what is
// still pending goes out first, then the TCP teardown of the wrapped stream.
template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, CoalescingStream& stream,
                    TeardownHandler&& handler) {
  stream.AsyncTeardown(role, std::forward<TeardownHandler>(handler));
}

}  // namespace bridge::ws

#endif  // BRIDGE_WS_COALESCING_STREAM_H_
