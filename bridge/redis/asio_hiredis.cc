#include "bridge/redis/asio_hiredis.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <utility>

#include "bridge/common/log.h"

namespace bridge::redis {

absl::Status AsioHiredis::Attach(redisAsyncContext* context, Strand strand) {
  if (context == nullptr) return absl::InvalidArgumentError("no hiredis context to attach");
  if (context->ev.data != nullptr) {
    return absl::FailedPreconditionError("hiredis context is already attached to an event loop");
  }
  std::shared_ptr<AsioHiredis> adapter(new AsioHiredis(context, std::move(strand)));
  boost::system::error_code ec;
  adapter->socket_.assign(context->c.fd, ec);
  if (ec) {
    return absl::InternalError("cannot register the Redis socket with Asio: " + ec.message());
  }
  adapter->self_ = adapter;
  context->ev.data = adapter.get();
  context->ev.addRead = &AsioHiredis::AddReadHook;
  context->ev.delRead = &AsioHiredis::DelReadHook;
  context->ev.addWrite = &AsioHiredis::AddWriteHook;
  context->ev.delWrite = &AsioHiredis::DelWriteHook;
  context->ev.cleanup = &AsioHiredis::CleanupHook;
  return absl::OkStatus();
}

AsioHiredis::AsioHiredis(redisAsyncContext* context, Strand strand)
    : strand_(std::move(strand)), context_(context), socket_(strand_) {}

AsioHiredis::~AsioHiredis() {
  // Only reached without cleanup if the io_context dropped our handlers while the context
  // lived on; the socket is still hiredis' to close, never ours.
  if (socket_.is_open()) socket_.release();
}

void AsioHiredis::AddReadHook(void* privdata) {
  auto* self = static_cast<AsioHiredis*>(privdata);
  self->want_read_ = true;
  self->DoWaitRead();
}

void AsioHiredis::DelReadHook(void* privdata) {
  // A queued wait cannot be cancelled alone; OnReadable checks want_read_ instead.
  static_cast<AsioHiredis*>(privdata)->want_read_ = false;
}

void AsioHiredis::AddWriteHook(void* privdata) {
  auto* self = static_cast<AsioHiredis*>(privdata);
  self->want_write_ = true;
  self->DoWaitWrite();
}

void AsioHiredis::DelWriteHook(void* privdata) {
  static_cast<AsioHiredis*>(privdata)->want_write_ = false;
}

void AsioHiredis::CleanupHook(void* privdata) { static_cast<AsioHiredis*>(privdata)->Cleanup(); }

void AsioHiredis::DoWaitRead() {
  if (reading_ || context_ == nullptr) return;
  reading_ = true;
  socket_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     boost::asio::bind_executor(
                         strand_, [self = shared_from_this()](const boost::system::error_code& ec) {
                           self->OnReadable(ec);
                         }));
}

void AsioHiredis::OnReadable(const boost::system::error_code& ec) {
  reading_ = false;
  if (ec == boost::asio::error::operation_aborted) return;
  // hiredis meets the socket's own error when it tries the read, and closes the context.
  if (ec) Fail(ec, "wait for read");
  if (context_ == nullptr || !want_read_) return;
  // May free the context (a closed connection): Cleanup then runs inside this call, and
  // the handler's reference keeps this object alive until we return.
  redisAsyncHandleRead(context_);
}

void AsioHiredis::DoWaitWrite() {
  if (writing_ || context_ == nullptr) return;
  writing_ = true;
  socket_.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                     boost::asio::bind_executor(
                         strand_, [self = shared_from_this()](const boost::system::error_code& ec) {
                           self->OnWritable(ec);
                         }));
}

void AsioHiredis::OnWritable(const boost::system::error_code& ec) {
  writing_ = false;
  if (ec == boost::asio::error::operation_aborted) return;
  // hiredis meets the socket's own error when it tries the write, and closes the context.
  if (ec) Fail(ec, "wait for write");
  if (context_ == nullptr || !want_write_) return;
  redisAsyncHandleWrite(context_);
}

void AsioHiredis::Cleanup() {
  if (context_ != nullptr) {
    // Later hiredis versions may call cleanup twice; make every further hook a no-op.
    context_->ev.data = nullptr;
    context_->ev.addRead = nullptr;
    context_->ev.delRead = nullptr;
    context_->ev.addWrite = nullptr;
    context_->ev.delWrite = nullptr;
    context_->ev.cleanup = nullptr;
    context_ = nullptr;
  }
  want_read_ = want_write_ = false;
  // Deregisters the fd before hiredis closes it and aborts the queued waits; their
  // handlers still hold references, so this object outlives them.
  if (socket_.is_open()) socket_.release();
  // Last statement: may destroy this object when no handler is queued.
  std::shared_ptr<AsioHiredis> last = std::move(self_);
}

void AsioHiredis::Fail(const boost::system::error_code& ec, const char* what) {
  if (ec == boost::asio::error::operation_aborted) return;
  BRIDGE_LOG(Error, "redis socket %s failed: %s", what, ec.message());
}

}  // namespace bridge::redis
