#include "bridge/redis/redis_connection.h"

#include <hiredis/hiredis.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "bridge/common/log.h"

namespace bridge::redis {
namespace {

absl::Status ErrorFromReply(const std::string& step, const std::string& message) {
  const std::string text = absl::StrCat(step, ": ", message);
  if (absl::StartsWith(message, "WRONGPASS") || absl::StartsWith(message, "NOAUTH") ||
      absl::StrContains(message, "invalid password") || absl::StartsWith(message, "NOPERM")) {
    return absl::UnauthenticatedError(text);
  }
  return absl::FailedPreconditionError(text);
}

// Carries Redis' text in the status of a connection closed on an error reply.
constexpr absl::string_view kErrorReplyPayload = "bridge.redis/closed-by-error-reply";

std::string ContextError(const redisAsyncContext* context, std::string_view fallback) {
  if (context->c.err != 0 && context->c.errstr[0] != '\0') return context->c.errstr;
  return std::string(fallback);
}

}  // namespace

RedisConnection::RedisConnection(Strand strand, RedisUrl url, RedisConnectionOptions options)
    : strand_(std::move(strand)), url_(std::move(url)), options_(options), timer_(strand_) {}

RedisConnection::~RedisConnection() { Close(); }

void RedisConnection::Open(ReadyHandler on_ready, ClosedHandler on_closed) {
  on_ready_ = std::move(on_ready);
  on_closed_ = std::move(on_closed);
  redisAsyncContext* context = url_.is_unix() ? redisAsyncConnectUnix(url_.socket_path.c_str())
                                              : redisAsyncConnect(url_.host.c_str(), url_.port);
  if (context == nullptr) return Finish(absl::ResourceExhaustedError("cannot allocate a context"));
  if (context->err != 0) {
    // Failed before any event loop saw it (no such socket path, unresolvable host).
    absl::Status status = absl::UnavailableError(absl::StrCat("connect: ", context->errstr));
    redisAsyncFree(context);
    return Finish(std::move(status));
  }
  if (absl::Status attached = AsioHiredis::Attach(context, strand_); !attached.ok()) {
    redisAsyncFree(context);
    return Finish(std::move(attached));
  }
  context_ = context;
  context->data = this;
  redisAsyncSetDisconnectCallback(context, &RedisConnection::OnDisconnectHook);
  // In hiredis 0.14 this arms the first write wait, which reports the connect: it must
  // come after Attach.
  redisAsyncSetConnectCallback(context, &RedisConnection::OnConnectHook);

  timer_.expires_after(absl::ToChronoNanoseconds(options_.connect_timeout));
  timer_.async_wait(boost::asio::bind_executor(
      strand_,
      [self = shared_from_this()](const boost::system::error_code& ec) { self->OnTimeout(ec); }));
}

void RedisConnection::Close() {
  closed_ = true;
  finished_ = true;
  ready_ = false;
  on_ready_ = nullptr;
  on_closed_ = nullptr;
  timer_.cancel();
  if (context_ == nullptr) return;
  redisAsyncContext* context = std::exchange(context_, nullptr);
  // Our hooks ignore a context without data: no report for a close we asked for.
  context->data = nullptr;
  // redisAsyncDisconnect frees at once only when connected with no reply pending; else
  // it would wait for the replies (publishes), so drop them: their callbacks run now with
  // a null reply and the owner has answered them already.
  if ((context->c.flags & REDIS_CONNECTED) != 0 && context->replies.head == nullptr) {
    redisAsyncDisconnect(context);
  } else {
    redisAsyncFree(context);
  }
}

void RedisConnection::OnConnectHook(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self == nullptr) return;
  if (status != REDIS_OK) {
    // hiredis frees the context itself right after this returns, without calling the
    // disconnect callback: forget it, never free it here.
    self->context_ = nullptr;
    const_cast<redisAsyncContext*>(context)->data = nullptr;
    return self->Finish(absl::UnavailableError(
        absl::StrCat("connect: ", ContextError(context, "connection failed"))));
  }
  self->OnConnected();
}

void RedisConnection::OnConnected() {
  if (options_.tcp_keepalive && !url_.is_unix()) {
    // Detects a peer that vanished without a FIN on an idle subscriber connection, where
    // no command is ever sent (a PING there would break hiredis' reply matching).
    redisEnableKeepAlive(&context_->c);
  }
  // The handshake is pipelined; the PING last proves the connection usable, notably that
  // no AUTH was required, since in subscribe mode a NOAUTH error would vanish.
  bool sent = true;
  if (!url_.password.empty()) {
    if (url_.user.empty()) {
      sent = redisAsyncCommand(context_, &RedisConnection::OnHandshakeReply, this, "AUTH %b",
                               url_.password.data(), url_.password.size()) == REDIS_OK;
    } else {
      sent = redisAsyncCommand(context_, &RedisConnection::OnHandshakeReply, this, "AUTH %b %b",
                               url_.user.data(), url_.user.size(), url_.password.data(),
                               url_.password.size()) == REDIS_OK;
    }
    handshake_pending_ += sent ? 1 : 0;
  }
  if (sent && url_.db != 0) {
    sent = redisAsyncCommand(context_, &RedisConnection::OnHandshakeReply, this, "SELECT %d",
                             url_.db) == REDIS_OK;
    handshake_pending_ += sent ? 1 : 0;
  }
  if (sent) {
    sent =
        redisAsyncCommand(context_, &RedisConnection::OnHandshakeReply, this, "PING") == REDIS_OK;
    handshake_pending_ += sent ? 1 : 0;
  }
  if (sent && options_.require_master) {
    sent = redisAsyncCommand(context_, &RedisConnection::OnRoleReply, this, "ROLE") == REDIS_OK;
    handshake_pending_ += sent ? 1 : 0;
  }
  if (!sent) {
    // hiredis 0.14 calls the connect callback outside its callback guard: freeing the
    // context here would pull it from under redisAsyncHandleWrite. Fail from a handler.
    boost::asio::post(strand_, [self = shared_from_this()] {
      self->Fail(absl::InternalError("cannot queue the Redis handshake"));
    });
  }
}

void RedisConnection::OnHandshakeReply(redisAsyncContext* context, void* reply, void* privdata) {
  // A null reply: the context is being freed; its disconnect path reports.
  if (reply == nullptr) return;
  static_cast<RedisConnection*>(privdata)->OnHandshakeReplied(
      context, static_cast<redisReply*>(reply), /*role=*/false);
}

void RedisConnection::OnRoleReply(redisAsyncContext* context, void* reply, void* privdata) {
  if (reply == nullptr) return;
  static_cast<RedisConnection*>(privdata)->OnHandshakeReplied(
      context, static_cast<redisReply*>(reply), /*role=*/true);
}

void RedisConnection::OnHandshakeReplied(redisAsyncContext* context, const redisReply* reply,
                                         bool role) {
  if (context != context_ || finished_) return;
  if (role && reply->type == REDIS_REPLY_ERROR && absl::StartsWith(reply->str, "NOPERM")) {
    // An ACL user limited to pub/sub may not run ROLE. Refusing every node would leave
    // Bridge without Redis for good; it relies on the sentinels' word alone instead.
    BRIDGE_LOG(Warning,
               "redis: %s:%d may not be asked ROLE (%s); trusting the sentinels that it is the "
               "master. Grant Bridge's Redis user +role",
               url_.host, url_.port, std::string(reply->str, reply->len));
  } else if (reply->type == REDIS_REPLY_ERROR) {
    return Fail(ErrorFromReply("handshake", std::string(reply->str, reply->len)));
  } else if (role) {
    // ROLE's first element is "master", "slave" or "sentinel".
    const redisReply* first =
        reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 ? reply->element[0] : nullptr;
    const std::string what = first != nullptr && first->type == REDIS_REPLY_STRING
                                 ? std::string(first->str, first->len)
                                 : std::string("unknown");
    if (what != "master") {
      return Fail(absl::FailedPreconditionError(absl::StrCat(
          "ROLE: the node is a ", what == "slave" ? "replica" : what, ", not a master")));
    }
  }
  if (--handshake_pending_ > 0) return;
  ready_ = true;
  timer_.cancel();
  boost::asio::post(strand_, [self = shared_from_this()] {
    if (self->closed_ || !self->ready_ || !self->on_ready_) return;
    ReadyHandler on_ready = std::move(self->on_ready_);
    on_ready();
  });
}

std::optional<std::string> RedisConnection::ErrorReply(const absl::Status& status) {
  absl::optional<absl::Cord> text = status.GetPayload(kErrorReplyPayload);
  if (!text.has_value()) return std::nullopt;
  return std::string(*text);
}

void RedisConnection::OnDisconnectHook(const redisAsyncContext* context, int /*status*/) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self == nullptr) return;
  // The context is being freed by hiredis (peer closed, socket error): forget it.
  self->context_ = nullptr;
  const_cast<redisAsyncContext*>(context)->data = nullptr;
  if (context->c.err == REDIS_ERR_OTHER && self->ready_) {
    // hiredis 0.14 sets REDIS_ERR_OTHER, with the reply's text, when it closes the context
    // on an error reply that no callback awaited (redisProcessCallbacks). In subscribe
    // mode a (P)SUBSCRIBE has no such callback: this is Redis refusing one.
    const std::string message = ContextError(context, "error reply");
    absl::Status status =
        absl::StartsWith(message, "NOPERM")
            ? absl::PermissionDeniedError(absl::StrCat("redis refused a command: ", message))
            : absl::FailedPreconditionError(absl::StrCat("redis refused a command: ", message));
    status.SetPayload(kErrorReplyPayload, absl::Cord(message));
    return self->Finish(std::move(status));
  }
  self->Finish(absl::UnavailableError(ContextError(context, "connection closed")));
}

void RedisConnection::OnTimeout(const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted || ready_ || finished_) return;
  Fail(absl::DeadlineExceededError(absl::StrCat("connect and handshake took longer than ",
                                                absl::FormatDuration(options_.connect_timeout))));
}

void RedisConnection::Fail(absl::Status status) {
  if (finished_) return;
  if (context_ != nullptr) {
    redisAsyncContext* context = std::exchange(context_, nullptr);
    context->data = nullptr;
    // Deferred by hiredis until its callback returns when called from one.
    redisAsyncFree(context);
  }
  Finish(std::move(status));
}

void RedisConnection::Finish(absl::Status status) {
  if (finished_) return;
  finished_ = true;
  ready_ = false;
  timer_.cancel();
  // Reported from a handler of our own: the owner may then drop us, which it must not do
  // inside a hiredis callback.
  boost::asio::post(strand_, [self = shared_from_this(), status = std::move(status)]() mutable {
    if (self->closed_ || !self->on_closed_) return;
    ClosedHandler on_closed = std::move(self->on_closed_);
    self->on_ready_ = nullptr;
    on_closed(std::move(status));
  });
}

}  // namespace bridge::redis
