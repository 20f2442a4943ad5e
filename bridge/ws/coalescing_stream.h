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
// built once and shared by every socket) and then calls Flush. Beast's own writes (the
// handshake response, ping, pong, close) arrive through async_write_some, are appended
// whole too, and complete at once. The pending bytes go to the socket in one write when
// no earlier write is still in flight; what comes meanwhile waits for the next one. Every
// frame is appended whole and in one piece, so frames never interleave on the wire.
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

  // Appends one complete frame's bytes; they go out at the next Flush (or with a write of
  // Beast's). Ignored once the stream has failed.
  void AppendFrame(std::string_view wire_bytes) {
    if (!error_) pending_.append(wire_bytes);
  }
  // Appends `json` framed as one text message.
  void AppendTextFrame(std::string_view json) {
    if (!error_) AppendWireTextFrame(&pending_, json);
  }
  // Starts sending what is pending, unless a send is in flight (then it follows that one).
  void Flush() { MaybeFlush(); }
  // Nothing to send, or nothing more can be: the stream failed.
  bool Idle() const { return error_ || (!flushing_ && pending_.empty()); }
  // Forgets the frames not yet handed to the socket: for a peer that stopped reading.
  void DiscardPending() { pending_.clear(); }

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
            for (auto it = boost::asio::buffer_sequence_begin(buffers);
                 it != boost::asio::buffer_sequence_end(buffers); ++it) {
              const boost::asio::const_buffer b(*it);
              pending_.append(static_cast<const char*>(b.data()), b.size());
              taken += b.size();
            }
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
  void MaybeFlush() {
    if (flushing_ || pending_.empty() || error_) return;
    flushing_ = true;
    sending_.swap(pending_);
    boost::asio::async_write(next_, boost::asio::buffer(sending_),
                             [this, keep = owner_.lock()](error_code ec, std::size_t) {
                               if (keep != nullptr) OnFlushed(ec);
                             });
  }

  void OnFlushed(error_code ec) {
    flushing_ = false;
    // A burst's buffer is not kept by a connection that goes quiet.
    if (sending_.capacity() > kKeptCapacity) {
      std::string().swap(sending_);
    } else {
      sending_.clear();
    }
    if (ec) error_ = ec;
    MaybeFlush();
    if (!Idle()) return;
    std::vector<std::function<void(error_code)>> waiters;
    waiters.swap(waiters_);
    for (auto& w : waiters) w(error_);
  }

  static constexpr std::size_t kKeptCapacity = 16 * 1024;

  next_layer_type next_;
  std::weak_ptr<void> owner_;
  std::string pending_;
  std::string sending_;
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
