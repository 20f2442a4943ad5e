#ifndef BRIDGE_REDIS_REDIS_CONNECTION_H_
#define BRIDGE_REDIS_REDIS_CONNECTION_H_

#include <hiredis/async.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bridge/redis/asio_hiredis.h"
#include "bridge/redis/redis_url.h"

namespace bridge::redis {

struct RedisConnectionOptions {
  // Bounds connect + AUTH + SELECT + PING.
  absl::Duration connect_timeout = absl::Seconds(5);
  bool tcp_keepalive = true;
  // Ends the handshake with ROLE and fails the attempt (FAILED_PRECONDITION) unless the
  // node says it is a master: a sentinel's answer may be stale, and a demoted master
  // still takes subscriptions that nothing will ever publish to.
  bool require_master = false;
};

// One attempt at a ready Redis connection: connect (TCP or Unix socket), AUTH, SELECT,
// PING (and ROLE when asked to), on a strand. It reports once, through on_ready, and once more,
// through on_closed, when the attempt fails or the ready connection drops; never after Close().
// Never reused: reconnecting makes a new one.
//
// Shared by its owner and its own queued handlers. Every method runs on the strand. The
// owner must Close() it before letting it go, so the context (and every hiredis callback,
// which fire with a null reply when the context is freed) is gone before the owner is.
class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  using ReadyHandler = absl::AnyInvocable<void()>;
  using ClosedHandler = absl::AnyInvocable<void(absl::Status)>;

  RedisConnection(Strand strand, RedisUrl url, RedisConnectionOptions options);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void Open(ReadyHandler on_ready, ClosedHandler on_closed);
  // Ends the connection, cleanly when nothing is pending; pending command callbacks run
  // with a null reply before it returns. Idempotent.
  void Close();

  // The context once ready, for commands; null before and after.
  redisAsyncContext* context() const { return ready_ ? context_ : nullptr; }

  // Redis' error text when on_closed's `status` says that hiredis closed the connection
  // on an error reply no callback awaited (in subscribe mode: a refused (P)SUBSCRIBE),
  // rather than the connection failing; nullopt otherwise. Such a status is
  // PERMISSION_DENIED for Redis' NOPERM (an ACL refusal), FAILED_PRECONDITION otherwise.
  static std::optional<std::string> ErrorReply(const absl::Status& status);

 private:
  static void OnConnectHook(const redisAsyncContext* context, int status);
  static void OnDisconnectHook(const redisAsyncContext* context, int status);
  static void OnHandshakeReply(redisAsyncContext* context, void* reply, void* privdata);
  static void OnRoleReply(redisAsyncContext* context, void* reply, void* privdata);

  void OnConnected();
  void OnHandshakeReplied(redisAsyncContext* context, const redisReply* reply, bool role);
  void OnTimeout(const boost::system::error_code& ec);
  // Frees the context (hiredis defers that while in one of its callbacks) and reports.
  void Fail(absl::Status status);
  // Reports the end of the attempt or connection, once, from a handler of its own.
  void Finish(absl::Status status);

  Strand strand_;
  const RedisUrl url_;
  const RedisConnectionOptions options_;
  boost::asio::steady_timer timer_;
  redisAsyncContext* context_ = nullptr;
  int handshake_pending_ = 0;
  bool ready_ = false;
  bool finished_ = false;
  bool closed_ = false;
  ReadyHandler on_ready_;
  ClosedHandler on_closed_;
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_REDIS_CONNECTION_H_
