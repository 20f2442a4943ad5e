#include "bridge/redis/publisher.h"

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bridge/common/log.h"

namespace bridge::redis {
namespace {

// A keyed publish, atomic on Redis: the key is set (for the window, in ms) only if it was
// not, and then the message is published; else -1, and nothing is.
constexpr const char* kPublishOnceScript =
    "if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then "
    "return redis.call('PUBLISH', ARGV[2], ARGV[3]) end return -1";

}  // namespace

Publisher::Publisher(Strand strand, RedisUrl url, const RedisUpstreamOptions& options,
                     std::shared_ptr<MasterResolver> resolver)
    : strand_(strand),
      options_(options),
      reconnector_(std::make_shared<Reconnector>("publisher", strand, std::move(url), options,
                                                 std::move(resolver))) {}

void Publisher::Start() {
  // The reconnector keeps us until Stop: our pending publishes' callbacks carry `this`.
  reconnector_->Start(
      [self = shared_from_this()] { self->ready_.store(true, std::memory_order_release); },
      // Pending publishes were answered by their callbacks as the context went.
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
  for (auto& [id, publish] : pending) {
    publish.done(absl::UnavailableError("redis upstream shutting down"));
  }
  reconnector_->Stop();
  ready_.store(false, std::memory_order_release);
}

void Publisher::Publish(std::string channel, std::string payload, std::string key,
                        hub::Upstream::PublishCallback done) {
  // Fails fast from the caller's thread; the strand checks again.
  if (stopping_.load(std::memory_order_acquire)) {
    return done(absl::UnavailableError("redis upstream shutting down"));
  }
  if (!ready_.load(std::memory_order_acquire)) {
    return done(absl::UnavailableError("redis publish connection is down"));
  }
  // Reserved here, on the caller's thread, so that publishes still queued for the strand
  // count too: a Redis that stops reading must not make us buffer without bound.
  const size_t bytes = channel.size() + payload.size() + key.size();
  if (absl::Status reserved = Reserve(bytes); !reserved.ok()) return done(reserved);
  hub::Upstream::PublishCallback release_then_done =
      [self = shared_from_this(), bytes,
       done = std::move(done)](absl::StatusOr<int64_t> receivers) mutable {
        self->Release(bytes);
        done(std::move(receivers));
      };
  boost::asio::post(strand_, [self = shared_from_this(), channel = std::move(channel),
                              payload = std::move(payload), key = std::move(key),
                              done = std::move(release_then_done)]() mutable {
    self->DoPublish(channel, payload, key, std::move(done));
  });
}

void Publisher::DoPublish(const std::string& channel, const std::string& payload,
                          const std::string& key, hub::Upstream::PublishCallback done) {
  if (stopped_) return done(absl::UnavailableError("redis upstream shutting down"));
  redisAsyncContext* context = reconnector_->context();
  if (context == nullptr) return done(absl::UnavailableError("redis publish connection is down"));
  const uint64_t id = ++last_publish_id_;
  auto* call = new PublishCall{this, id};
  int sent;
  if (key.empty()) {
    sent = redisAsyncCommand(context, &Publisher::OnReply, call, "PUBLISH %b %b", channel.data(),
                             channel.size(), payload.data(), payload.size());
  } else {
    // The channel's length first, so that no other channel and key make the same name.
    const std::string redis_key =
        absl::StrCat("bridge:published:", channel.size(), ":", channel, ":", key);
    const std::string window_ms =
        absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.publish_key_window)));
    const char* argv[] = {"EVAL",           kPublishOnceScript, "1",           redis_key.data(),
                          window_ms.data(), channel.data(),     payload.data()};
    const size_t argvlen[] = {4,
                              std::strlen(kPublishOnceScript),
                              1,
                              redis_key.size(),
                              window_ms.size(),
                              channel.size(),
                              payload.size()};
    sent = redisAsyncCommandArgv(context, &Publisher::OnReply, call, 7, argv, argvlen);
  }
  if (sent != REDIS_OK) {
    delete call;
    return done(absl::UnavailableError("redis publish connection is closing"));
  }
  auto timer = std::make_unique<boost::asio::steady_timer>(strand_);
  timer->expires_after(absl::ToChronoNanoseconds(options_.publish_timeout));
  timer->async_wait(boost::asio::bind_executor(
      strand_, [self = shared_from_this(), id](const boost::system::error_code& ec) {
        self->OnTimeout(id, ec);
      }));
  pending_.emplace(id, PendingPublish{std::move(done), std::move(timer)});
}

void Publisher::OnReply(redisAsyncContext* /*context*/, void* reply, void* privdata) {
  std::unique_ptr<PublishCall> call(static_cast<PublishCall*>(privdata));
  call->publisher->OnReplied(call->id, static_cast<redisReply*>(reply));
}

void Publisher::OnReplied(uint64_t id, const redisReply* reply) {
  auto it = pending_.find(id);
  // Already answered: timed out, or Stop.
  if (it == pending_.end()) return;
  hub::Upstream::PublishCallback done = std::move(it->second.done);
  pending_.erase(it);
  if (reply == nullptr) {
    return done(absl::UnavailableError("redis publish connection lost before the reply"));
  }
  if (reply->type == REDIS_REPLY_INTEGER) {
    return done(reply->integer < 0 ? hub::Upstream::kAlreadyPublished
                                   : static_cast<int64_t>(reply->integer));
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    const std::string error(reply->str, reply->len);
    // An ACL without EVAL or the key refuses keyed publishes alone: the caller's to fix.
    if (absl::StartsWith(error, "NOPERM")) {
      return done(absl::PermissionDeniedError(absl::StrCat("redis PUBLISH: ", error)));
    }
    return done(absl::InternalError(absl::StrCat("redis PUBLISH: ", error)));
  }
  done(absl::InternalError(absl::StrCat("redis PUBLISH: unexpected reply type ", reply->type)));
}

void Publisher::OnTimeout(uint64_t id, const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted) return;
  if (ec) return Fail(ec, "publish timer");
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  hub::Upstream::PublishCallback done = std::move(it->second.done);
  pending_.erase(it);
  const std::string why = absl::StrCat("redis PUBLISH got no reply within ",
                                       absl::FormatDuration(options_.publish_timeout));
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
  for (auto& [id, publish] : pending) {
    publish.done(absl::UnavailableError(absl::StrCat("redis publish connection reset: ", why)));
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
