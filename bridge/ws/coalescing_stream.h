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
  // Forgets the frames not yet handed to the socket: for a peer that stopped reading.
  void DiscardPending();

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return next_.async_read_some(buffers, std::forward<Token>(token));
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

  // The frames of one write: runs of bytes, and the iovecs that point at them.
  struct Batch;

 private:
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
  std::vector<std::function<void(error_code)>> waiters_;
};

// Beast closes a WebSocket through these (found by argument-dependent lookup): what is
// still pending goes out first, then the TCP teardown of the wrapped stream.
template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, CoalescingStream& stream,
                    TeardownHandler&& handler) {
  stream.Flush();
  stream.async_flush([&stream, role, handler = std::forward<TeardownHandler>(handler)](
                         boost::beast::error_code) mutable {
    using boost::beast::websocket::async_teardown;
    async_teardown(role, stream.next_layer(), std::move(handler));
  });
}

}  // namespace bridge::ws

#endif  // BRIDGE_WS_COALESCING_STREAM_H_
