#include "bridge/redis/publisher.h"

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <string_view>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bridge/common/log.h"
#include "bridge/redis/durable_script.h"

namespace bridge::redis {
namespace {

// A keyed publish, atomic on Redis: the key is set (for the window, in ms) only if it was
// not, and then the message is published; else -1, and nothing is.
constexpr const char* kPublishOnceScript =
    "if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then "
    "return redis.call('PUBLISH', ARGV[2], ARGV[3]) end return -1";

// hiredis' redisAsyncCommandArgv on a vector of arguments.
int CommandArgv(redisAsyncContext* context, redisCallbackFn* callback, void* privdata,
                const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const std::string& arg : argv) {
    args.push_back(arg.data());
    lens.push_back(arg.size());
  }
  return redisAsyncCommandArgv(context, callback, privdata, static_cast<int>(args.size()),
                               args.data(), lens.data());
}

}  // namespace

Publisher::Publisher(Strand strand, RedisUrl url, const RedisUpstreamOptions& options,
                     std::shared_ptr<MasterResolver> resolver)
    : strand_(strand),
      options_(options),
      reconnector_(std::make_shared<Reconnector>("publisher", strand, std::move(url), options,
                                                 std::move(resolver))) {}

void Publisher::Start() {
  // The reconnector keeps us until Stop: our pending commands' callbacks carry `this`.
  reconnector_->Start(
      [self = shared_from_this()] {
        // Sent first on the connection, so that it runs before any FCALL sent after.
        self->LoadLibrary(self->reconnector_->context());
        self->ready_.store(true, std::memory_order_release);
      },
      // Pending commands were answered by their callbacks as the context went.
      [self = shared_from_this()](const absl::Status&) {
        self->ready_.store(false, std::memory_order_release);
      });
}

void Publisher::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true, std::memory_order_release);
  // Answered first, so that the null-reply callbacks run by the close find nothing pending.
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, command] : pending) {
    command.done(absl::UnavailableError("redis upstream shutting down"));
  }
  reconnector_->Stop();
  ready_.store(false, std::memory_order_release);
}

void Publisher::Publish(std::string channel, std::string payload, std::string key,
                        hub::Upstream::PublishCallback done) {
  const size_t bytes = channel.size() + payload.size() + key.size();
  std::vector<std::string> argv;
  if (key.empty()) {
    argv = {"PUBLISH", std::move(channel), std::move(payload)};
  } else {
    // The channel's length first, so that no other channel and key make the same name.
    std::string redis_key =
        absl::StrCat("bridge:published:", channel.size(), ":", channel, ":", key);
    argv = {
        "EVAL",
        kPublishOnceScript,
        "1",
        std::move(redis_key),
        absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.publish_key_window))),
        std::move(channel),
        std::move(payload)};
  }
  Submit("PUBLISH", std::move(argv), /*fcall=*/false, bytes,
         [done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
           if (!reply.ok()) return done(reply.status());
           const redisReply& r = **reply;
           if (r.type == REDIS_REPLY_INTEGER) {
             return done(r.integer < 0 ? hub::Upstream::kAlreadyPublished
                                       : static_cast<int64_t>(r.integer));
           }
           if (r.type == REDIS_REPLY_ERROR) {
             const std::string error(r.str, r.len);
             // An ACL without EVAL or the key refuses keyed publishes alone: the caller's to
             // fix.
             if (absl::StartsWith(error, "NOPERM")) {
               return done(absl::PermissionDeniedError(absl::StrCat("redis PUBLISH: ", error)));
             }
             return done(absl::InternalError(absl::StrCat("redis PUBLISH: ", error)));
           }
           done(absl::InternalError(absl::StrCat("redis PUBLISH: unexpected reply type ", r.type)));
         });
}

void Publisher::PublishDurable(hub::DurablePublish request,
                               hub::Upstream::DurablePublishCallback done) {
  const size_t bytes = request.channel.size() + request.payload.size() + request.key.size();
  absl::StatusOr<std::vector<std::string>> argv =
      DurablePublishCommand(request, /*sharded=*/false, options_.publish_key_window);
  if (!argv.ok()) return done(argv.status());
  Submit(absl::StrCat("FCALL ", std::string(kDurablePublishFunction)), *std::move(argv),
         /*fcall=*/true, bytes,
         [done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
           if (!reply.ok()) return done(reply.status());
           done(ParseDurablePublishReply(**reply));
         });
}

void Publisher::ReadHistory(hub::HistoryQuery query, hub::Upstream::HistoryCallback done) {
  const size_t bytes = query.channel.size();
  absl::StatusOr<std::vector<std::string>> argv = HistoryCommand(query);
  if (!argv.ok()) return done(argv.status());
  Submit(absl::StrCat("FCALL_RO ", std::string(kDurableHistoryFunction)), *std::move(argv),
         /*fcall=*/true, bytes,
         [done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
           if (!reply.ok()) return done(reply.status());
           done(ParseHistoryReply(**reply));
         });
}

void Publisher::Submit(std::string what, std::vector<std::string> argv, bool fcall, size_t bytes,
                       ReplyHandler done) {
  // Fails fast from the caller's thread; the strand checks again.
  if (stopping_.load(std::memory_order_acquire)) {
    return done(absl::UnavailableError("redis upstream shutting down"));
  }
  if (!ready_.load(std::memory_order_acquire)) {
    return done(absl::UnavailableError("redis publish connection is down"));
  }
  // Reserved here, on the caller's thread, so that commands still queued for the strand
  // count too: a Redis that stops reading must not make us buffer without bound.
  if (absl::Status reserved = Reserve(bytes); !reserved.ok()) return done(reserved);
  ReplyHandler release_then_done = [self = shared_from_this(), bytes, done = std::move(done)](
                                       absl::StatusOr<const redisReply*> reply) mutable {
    self->Release(bytes);
    done(std::move(reply));
  };
  boost::asio::post(
      strand_, [self = shared_from_this(), what = std::move(what), argv = std::move(argv), fcall,
                done = std::move(release_then_done)]() mutable {
        self->DoCommand(std::move(what), std::move(argv), fcall, std::move(done));
      });
}

void Publisher::DoCommand(std::string what, std::vector<std::string> argv, bool fcall,
                          ReplyHandler done) {
  if (stopped_) return done(absl::UnavailableError("redis upstream shutting down"));
  redisAsyncContext* context = reconnector_->context();
  if (context == nullptr) return done(absl::UnavailableError("redis publish connection is down"));
  const uint64_t id = ++last_publish_id_;
  if (!Send(context, id, argv)) {
    return done(absl::UnavailableError("redis publish connection is closing"));
  }
  auto timer = std::make_unique<boost::asio::steady_timer>(strand_);
  timer->expires_after(absl::ToChronoNanoseconds(options_.publish_timeout));
  timer->async_wait(boost::asio::bind_executor(
      strand_, [self = shared_from_this(), id](const boost::system::error_code& ec) {
        self->OnTimeout(id, ec);
      }));
  pending_.emplace(id,
                   PendingCommand{.what = std::move(what),
                                  .done = std::move(done),
                                  .timer = std::move(timer),
                                  .fcall = fcall ? std::move(argv) : std::vector<std::string>()});
}

bool Publisher::Send(redisAsyncContext* context, uint64_t id,
                     const std::vector<std::string>& argv) {
  auto* call = new PublishCall{this, id};
  if (CommandArgv(context, &Publisher::OnReply, call, argv) != REDIS_OK) {
    delete call;
    return false;
  }
  return true;
}

void Publisher::LoadLibrary(redisAsyncContext* context) {
  if (context == nullptr) return;
  // Nothing to free or find: the reply is only looked at for the log. Not sent (a context
  // closing): the FCALLs after it are not sent either.
  CommandArgv(context, &Publisher::OnLibraryLoaded, nullptr, DurableLibraryLoadCommand());
}

void Publisher::OnLibraryLoaded(redisAsyncContext* /*context*/, void* reply, void* /*privdata*/) {
  const auto* r = static_cast<const redisReply*>(reply);
  if (r == nullptr || r->type != REDIS_REPLY_ERROR) return;
  // Plain publishes go on; durable ones fail with Redis' words until this is fixed.
  BRIDGE_LOG(Warning,
             "redis: cannot load the durable channels' library (FUNCTION LOAD: %s); durable "
             "publishes and history reads will fail (Redis 7 and the @scripting commands are "
             "needed)",
             std::string(r->str, r->len));
}

void Publisher::OnReply(redisAsyncContext* /*context*/, void* reply, void* privdata) {
  std::unique_ptr<PublishCall> call(static_cast<PublishCall*>(privdata));
  call->publisher->OnReplied(call->id, static_cast<redisReply*>(reply));
}

void Publisher::OnReplied(uint64_t id, const redisReply* reply) {
  auto it = pending_.find(id);
  // Already answered: timed out, or Stop.
  if (it == pending_.end()) return;
  if (reply != nullptr && reply->type == REDIS_REPLY_ERROR && !it->second.fcall.empty() &&
      IsFunctionMissing(std::string_view(reply->str, reply->len))) {
    // The library went (FUNCTION FLUSH, or a restart that the connection survived through
    // a proxy): loaded again, and the call sent once more under the same id and timer.
    const std::vector<std::string> fcall = std::move(it->second.fcall);
    it->second.fcall.clear();
    redisAsyncContext* context = reconnector_->context();
    if (context != nullptr) {
      LoadLibrary(context);
      if (Send(context, id, fcall)) return;
    }
  }
  ReplyHandler done = std::move(it->second.done);
  pending_.erase(it);
  if (reply == nullptr) {
    return done(absl::UnavailableError("redis publish connection lost before the reply"));
  }
  done(reply);
}

void Publisher::OnTimeout(uint64_t id, const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted) return;
  if (ec) return Fail(ec, "publish timer");
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  ReplyHandler done = std::move(it->second.done);
  const std::string why = absl::StrCat("redis ", it->second.what, " got no reply within ",
                                       absl::FormatDuration(options_.publish_timeout));
  pending_.erase(it);
  done(absl::DeadlineExceededError(why));
  if (stopped_) return;
  DoReset(why);
}

// The connection stopped answering (a partition without reset, a Redis that hangs):
// everything sent after stays queued in hiredis behind it. Drops it, which frees hiredis'
// output buffer, answers what is pending, and reconnects.
void Publisher::DoReset(const std::string& why) {
  if (!reconnector_->ready()) return;
  auto pending = std::move(pending_);
  pending_.clear();
  // Answered first, so that the null-reply callbacks run by the drop find nothing pending.
  for (auto& [id, command] : pending) {
    command.done(absl::UnavailableError(absl::StrCat("redis publish connection reset: ", why)));
  }
  // Logs it, once, and reconnects.
  reconnector_->Drop(absl::DeadlineExceededError(
      absl::StrFormat("stalled: %s; dropped with %d more pending", why, pending.size())));
  // Counted once the drop is in the connection's stats, so that a reader who sees the
  // reset sees its error too.
  resets_.fetch_add(1, std::memory_order_release);
}

absl::Status Publisher::Reserve(size_t bytes) {
  const int count = in_flight_.fetch_add(1, std::memory_order_acq_rel);
  const size_t held = bytes_in_flight_.fetch_add(bytes, std::memory_order_acq_rel);
  if (count < options_.max_publishes_in_flight &&
      (held == 0 || held + bytes <= options_.max_publish_bytes_in_flight)) {
    return absl::OkStatus();
  }
  Release(bytes);
  rejected_.fetch_add(1, std::memory_order_relaxed);
  return absl::UnavailableError(absl::StrFormat(
      "too many publishes waiting for redis: %d publishes (%d bytes) in flight, the limit is "
      "%d publishes (%d bytes); redis is slow or unreachable",
      count, held, options_.max_publishes_in_flight, options_.max_publish_bytes_in_flight));
}

void Publisher::Release(size_t bytes) {
  in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  bytes_in_flight_.fetch_sub(bytes, std::memory_order_acq_rel);
}

void Publisher::Fail(const boost::system::error_code& ec, const char* what) {
  if (ec == boost::asio::error::operation_aborted) return;
  BRIDGE_LOG(Error, "redis: %s failed: %s", what, ec.message());
}

}  // namespace bridge::redis
