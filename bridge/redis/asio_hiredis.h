#ifndef BRIDGE_REDIS_ASIO_HIREDIS_H_
#define BRIDGE_REDIS_ASIO_HIREDIS_H_

#include <hiredis/async.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/error_code.hpp>
#include <memory>

#include "absl/status/status.h"

namespace bridge::redis {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

// Drives one hiredis redisAsyncContext from a Boost.Asio strand: hiredis' event hooks
// (addRead, delRead, addWrite, delWrite, cleanup) become readiness waits on the context's
// socket, and readiness becomes redisAsyncHandleRead/Write, always on the strand.
//
// Owned by the context once attached: hiredis' cleanup hook (called when the context is
// freed) detaches it, and it frees itself after its last queued handler has run, so a wait
// that completes after the context is gone touches nothing freed. It never closes the
// socket: hiredis owns it.
//
// hiredis 0.14 has no timer hook; connect and command timeouts belong to the caller.
// Everything that touches the context, including Attach, must run on `strand`.
class AsioHiredis : public std::enable_shared_from_this<AsioHiredis> {
 public:
  // FAILED_PRECONDITION when `context` is already attached to an event loop (ev.data set);
  // INTERNAL when its socket cannot be registered. On error the context is unchanged and
  // still the caller's to free.
  static absl::Status Attach(redisAsyncContext* context, Strand strand);

  ~AsioHiredis();
  AsioHiredis(const AsioHiredis&) = delete;
  AsioHiredis& operator=(const AsioHiredis&) = delete;

 private:
  AsioHiredis(redisAsyncContext* context, Strand strand);

  // Trampolines for hiredis' C hooks; `privdata` is the adapter.
  static void AddReadHook(void* privdata);
  static void DelReadHook(void* privdata);
  static void AddWriteHook(void* privdata);
  static void DelWriteHook(void* privdata);
  static void CleanupHook(void* privdata);

  void DoWaitRead();
  void OnReadable(const boost::system::error_code& ec);
  void DoWaitWrite();
  void OnWritable(const boost::system::error_code& ec);
  void Cleanup();
  void Fail(const boost::system::error_code& ec, const char* what);

  Strand strand_;
  // Null once hiredis called cleanup: the context is being freed.
  redisAsyncContext* context_;
  boost::asio::posix::stream_descriptor socket_;
  // What hiredis asked for, and which waits are queued.
  bool want_read_ = false;
  bool want_write_ = false;
  bool reading_ = false;
  bool writing_ = false;
  // The reference the context holds, dropped at cleanup.
  std::shared_ptr<AsioHiredis> self_;
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_ASIO_HIREDIS_H_
