#include "bridge/redis/resp_connection.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace bridge::redis {
namespace {

struct ReplyFree {
  void operator()(void* reply) const { freeReplyObject(reply); }
};

std::string_view Text(const redisReply& r) { return std::string_view(r.str, r.len); }

// Frames Redis sends unasked whatever the command waiting.
bool IsMessage(std::string_view kind) {
  return kind == "message" || kind == "pmessage" || kind == "smessage";
}

bool IsSubscription(std::string_view kind) {
  return kind == "subscribe" || kind == "psubscribe" || kind == "ssubscribe" ||
         kind == "unsubscribe" || kind == "punsubscribe" || kind == "sunsubscribe";
}

absl::Status HandshakeError(std::string_view step, std::string_view message) {
  const absl::string_view text(message.data(), message.size());
  const std::string what = absl::StrCat(absl::string_view(step.data(), step.size()), ": ", text);
  if (absl::StartsWith(text, "WRONGPASS") || absl::StartsWith(text, "NOAUTH") ||
      absl::StrContains(text, "invalid password") || absl::StartsWith(text, "NOPERM")) {
    return absl::UnauthenticatedError(what);
  }
  return absl::FailedPreconditionError(what);
}

}  // namespace

RespConnection::RespConnection(Strand strand, RespConnectionOptions options)
    : strand_(std::move(strand)),
      options_(std::move(options)),
      resolver_(strand_),
      socket_(strand_),
      timer_(strand_),
      reader_(redisReaderCreate()) {}

RespConnection::~RespConnection() {
  Shut();
  redisReaderFree(reader_);
}

std::string RespConnection::address() const {
  return absl::StrCat(options_.host, ":", options_.port);
}

void RespConnection::Open(ReadyHandler on_ready, ClosedHandler on_closed, PushHandler on_push) {
  on_ready_ = std::move(on_ready);
  on_closed_ = std::move(on_closed);
  on_push_ = std::move(on_push);
  if (reader_ == nullptr) {
    // Reported from a handler of its own, as every other end of an attempt is.
    boost::asio::post(strand_, [self = shared_from_this()] {
      self->Fail(absl::ResourceExhaustedError("cannot allocate a reader"));
    });
    return;
  }
  timer_.expires_after(absl::ToChronoNanoseconds(options_.connect_timeout));
  timer_.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) { self->OnTimeout(ec); });
  resolver_.async_resolve(
      options_.host, std::to_string(options_.port),
      [self = shared_from_this()](const boost::system::error_code& ec,
                                  const boost::asio::ip::tcp::resolver::results_type& results) {
        self->OnResolve(ec, results);
      });
}

void RespConnection::OnResolve(const boost::system::error_code& ec,
                               const boost::asio::ip::tcp::resolver::results_type& results) {
  if (finished_) return;
  if (ec) return Fail(absl::UnavailableError(absl::StrCat("resolve: ", ec.message())));
  boost::asio::async_connect(
      socket_, results,
      [self = shared_from_this()](const boost::system::error_code& ec,
                                  const boost::asio::ip::tcp::endpoint&) { self->OnConnect(ec); });
}

void RespConnection::OnConnect(const boost::system::error_code& ec) {
  if (finished_) return;
  if (ec) return Fail(absl::UnavailableError(absl::StrCat("connect: ", ec.message())));
  boost::system::error_code ignored;
  socket_.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
  if (options_.tcp_keepalive) {
    socket_.set_option(boost::asio::socket_base::keep_alive(true), ignored);
  }
  DoRead();
  if (!options_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!options_.user.empty()) auth.push_back(options_.user);
    auth.push_back(options_.password);
    Send(auth, [self = shared_from_this()](const redisReply* reply) {
      self->OnHandshakeReply(reply, /*last=*/false);
    });
  }
  Send({"PING"}, [self = shared_from_this()](const redisReply* reply) {
    self->OnHandshakeReply(reply, /*last=*/true);
  });
}

void RespConnection::OnHandshakeReply(const redisReply* reply, bool last) {
  if (finished_ || reply == nullptr) return;
  if (reply->type == REDIS_REPLY_ERROR) {
    return Fail(HandshakeError(last ? "PING" : "AUTH", Text(*reply)));
  }
  if (!last) return;
  timer_.cancel();
  ready_ = true;
  if (on_ready_) on_ready_();
}

void RespConnection::OnTimeout(const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted || finished_ || ready_) return;
  Fail(absl::DeadlineExceededError(absl::StrCat("connect to ", address(), ": no answer within ",
                                                absl::FormatDuration(options_.connect_timeout))));
}

void RespConnection::Command(std::vector<std::string> argv, ReplyHandler done) {
  if (!ready_ || finished_ || argv.empty()) {
    boost::asio::post(strand_, [done = std::move(done)]() mutable { done(nullptr); });
    return;
  }
  Send(argv, std::move(done));
}

void RespConnection::Send(const std::vector<std::string>& argv, ReplyHandler done) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  char* formatted = nullptr;
  const int len =
      redisFormatCommandArgv(&formatted, static_cast<int>(args.size()), args.data(), lens.data());
  if (len < 0 || formatted == nullptr) {
    boost::asio::post(strand_, [done = std::move(done)]() mutable { done(nullptr); });
    return;
  }
  queued_.append(formatted, static_cast<size_t>(len));
  redisFreeCommand(formatted);
  waiting_.push_back(Waiting{absl::AsciiStrToLower(argv[0]), std::move(done)});
  if (writing_.empty()) DoWrite();
}

void RespConnection::DoWrite() {
  writing_.swap(queued_);
  boost::asio::async_write(socket_, boost::asio::buffer(writing_),
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       size_t) { self->OnWrite(ec); });
}

void RespConnection::OnWrite(const boost::system::error_code& ec) {
  if (finished_) return;
  if (ec) return Fail(absl::UnavailableError(absl::StrCat("write: ", ec.message())));
  writing_.clear();
  if (!queued_.empty()) DoWrite();
}

void RespConnection::DoRead() {
  socket_.async_read_some(boost::asio::buffer(read_buffer_),
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      size_t bytes) { self->OnRead(ec, bytes); });
}

void RespConnection::OnRead(const boost::system::error_code& ec, size_t bytes) {
  if (finished_) return;
  if (ec) {
    return Fail(absl::UnavailableError(ec == boost::asio::error::eof
                                           ? std::string("connection closed by Redis")
                                           : absl::StrCat("read: ", ec.message())));
  }
  if (redisReaderFeed(reader_, read_buffer_.data(), bytes) != REDIS_OK) {
    return Fail(absl::InternalError(absl::StrCat("reader: ", reader_->errstr)));
  }
  while (!finished_) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
      return Fail(absl::InternalError(absl::StrCat("protocol error: ", reader_->errstr)));
    }
    if (raw == nullptr) break;
    const std::unique_ptr<void, ReplyFree> reply(raw);
    Dispatch(*static_cast<const redisReply*>(raw));
  }
  // A handler may have ended the connection.
  if (!finished_) DoRead();
}

void RespConnection::Dispatch(const redisReply& reply) {
  if (reply.type == REDIS_REPLY_ARRAY && reply.elements > 0 &&
      reply.element[0]->type == REDIS_REPLY_STRING) {
    const std::string kind =
        absl::AsciiStrToLower(absl::string_view(reply.element[0]->str, reply.element[0]->len));
    const bool answers_oldest = !waiting_.empty() && waiting_.front().name == kind;
    if (IsMessage(kind) || (IsSubscription(kind) && !answers_oldest)) {
      if (on_push_) on_push_(reply);
      return;
    }
  }
  if (waiting_.empty()) {
    return Fail(absl::InternalError("Redis sent a reply that no command awaited"));
  }
  ReplyHandler done = std::move(waiting_.front().done);
  waiting_.pop_front();
  done(&reply);
}

void RespConnection::Fail(absl::Status status) {
  if (finished_) return;
  ClosedHandler on_closed = std::move(on_closed_);
  Shut();
  if (on_closed) on_closed(std::move(status));
}

void RespConnection::Close() { Shut(); }

void RespConnection::Shut() {
  if (finished_) return;
  finished_ = true;
  ready_ = false;
  on_ready_ = nullptr;
  on_closed_ = nullptr;
  on_push_ = nullptr;
  boost::system::error_code ignored;
  timer_.cancel();
  resolver_.cancel();
  socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  // Taken first: a callback may send another command, which then gets null by post.
  std::deque<Waiting> waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& w : waiting) w.done(nullptr);
}

}  // namespace bridge::redis
