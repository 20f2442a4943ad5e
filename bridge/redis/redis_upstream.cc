#include "bridge/redis/redis_upstream.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "bridge/common/log.h"
#include "bridge/redis/asio_hiredis.h"
#include "bridge/redis/redis_connection.h"
#include "bridge/redis/subscribe_refused.h"

namespace bridge::redis {
namespace {

std::string_view ReplyText(const redisReply* reply) {
  return reply->str == nullptr ? std::string_view() : std::string_view(reply->str, reply->len);
}

bool IsString(const redisReply* reply) {
  return reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS;
}

}  // namespace

class RedisUpstream::Core : public std::enable_shared_from_this<RedisUpstream::Core> {
 public:
  Core(const RedisUpstreamOptions& options, RedisUrl url, boost::asio::io_context& io)
      : options_(options),
        url_(std::move(url)),
        redacted_url_(url_.Redacted()),
        io_(io),
        strand_(boost::asio::make_strand(io)),
        subscriber_("subscriber", strand_),
        publisher_("publisher", strand_) {}

  void SetListener(hub::UpstreamListener* listener) { listener_ = listener; }

  void Start() {
    boost::asio::post(strand_, [self = shared_from_this()] {
      if (self->stopped_) return;
      BRIDGE_LOG(Info, "redis: connecting to %s", self->redacted_url_);
      self->DoConnect(&self->subscriber_);
      self->DoConnect(&self->publisher_);
    });
  }

  void Stop() {
    // Idempotent: the destructor stops again, often after the io_context has ended.
    if (stop_finished_.load(std::memory_order_acquire)) return;
    if (strand_.running_in_this_thread()) return DoStop();
    auto done = std::make_shared<absl::Notification>();
    boost::asio::post(strand_, [self = shared_from_this(), done] {
      self->DoStop();
      self->stop_finished_.store(true, std::memory_order_release);
      done->Notify();
    });
    if (done->WaitForNotificationWithTimeout(options_.stop_timeout)) return;
    if (io_.stopped()) {
      // Nobody runs the strand any more, so no handler can race us: close from here.
      BRIDGE_LOG(Warning, "redis: io_context not running at Stop; closing from the caller");
      DoStop();
      stop_finished_.store(true, std::memory_order_release);
      return;
    }
    BRIDGE_LOG(Error, "redis: Stop did not finish within %s; the strand is blocked",
               absl::FormatDuration(options_.stop_timeout));
  }

  void Subscribe(const hub::Topic& topic, uint64_t epoch, bool subscribe) {
    boost::asio::post(strand_, [self = shared_from_this(), topic, epoch, subscribe] {
      self->DoSubscribe(topic, epoch, subscribe);
    });
  }

  void Publish(std::string channel, std::string payload, PublishCallback done) {
    // Fails fast from the caller's thread; the strand checks again.
    if (stopping_.load(std::memory_order_acquire)) {
      return done(absl::UnavailableError("redis upstream shutting down"));
    }
    if (!publisher_ready_.load(std::memory_order_acquire)) {
      return done(absl::UnavailableError("redis publish connection is down"));
    }
    // Reserved here, on the caller's thread, so that publishes still queued for the
    // strand count too: a Redis that stops reading must not make us buffer without bound.
    const size_t bytes = channel.size() + payload.size();
    if (absl::Status reserved = ReservePublish(bytes); !reserved.ok()) return done(reserved);
    PublishCallback release_then_done = [self = shared_from_this(), bytes, done = std::move(done)](
                                            absl::StatusOr<int64_t> receivers) mutable {
      self->ReleasePublish(bytes);
      done(std::move(receivers));
    };
    boost::asio::post(
        strand_, [self = shared_from_this(), channel = std::move(channel),
                  payload = std::move(payload), done = std::move(release_then_done)]() mutable {
          self->DoPublish(channel, payload, std::move(done));
        });
  }

  bool connected() const { return publisher_ready_.load(std::memory_order_acquire); }

  RedisUpstreamStats Stats() const {
    absl::MutexLock lock(&stats_mu_);
    return stats_;
  }

  const std::string& redacted_url() const { return redacted_url_; }

 private:
  // One of the two connections, with its reconnect state. Strand only.
  struct Link {
    Link(const char* name, Strand& strand) : name(name), retry(strand) {}

    const char* name;
    std::shared_ptr<RedisConnection> connection;
    bool ready = false;
    bool ever_ready = false;
    absl::Time ready_since;
    // Failed attempts since the last ready connection, for the logs.
    int failures = 0;
    // The reconnect delay's exponent: it grows with every failed attempt and every
    // connection lost soon after it was ready, and resets only when one stayed ready for
    // backoff_reset_after.
    int backoff = 0;
    std::string last_logged_error;
    boost::asio::steady_timer retry;
  };

  // A (P)SUBSCRIBE or (P)UNSUBSCRIBE sent and not yet confirmed. Redis answers them in
  // the order sent, one reply each (one name per command), so when an error reply closes
  // the connection, the oldest one is the command it refused.
  struct Order {
    hub::Topic topic;
    bool subscribe;
  };

  struct Refusal {
    absl::Status why;
    absl::Time until;
  };

  struct PendingPublish {
    PublishCallback done;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  // What a PUBLISH's hiredis callback needs; freed by that callback, which hiredis calls
  // exactly once (with a null reply if the context goes first).
  struct PublishCall {
    Core* core;
    uint64_t id;
  };

  void DoConnect(Link* link) {
    auto connection = std::make_shared<RedisConnection>(
        strand_, url_,
        RedisConnectionOptions{.connect_timeout = options_.connect_timeout,
                               .tcp_keepalive = options_.tcp_keepalive});
    link->connection = connection;
    connection->Open([self = shared_from_this(), link] { self->OnReady(link); },
                     [self = shared_from_this(), link](absl::Status status) {
                       self->OnClosed(link, std::move(status));
                     });
  }

  void OnReady(Link* link) {
    if (stopped_) return;
    link->ready = true;
    if (link->ever_ready || link->failures > 0) {
      BRIDGE_LOG(Info, "redis: %s connection to %s ready%s after %d failed attempts", link->name,
                 redacted_url_, link->ever_ready ? " again" : "", link->failures);
    } else {
      BRIDGE_LOG(Info, "redis: %s connection to %s ready", link->name, redacted_url_);
    }
    link->ever_ready = true;
    link->ready_since = absl::Now();
    link->failures = 0;
    link->last_logged_error.clear();
    if (link == &subscriber_) {
      epoch_ = ++last_epoch_;
      SetStat([](RedisUpstreamStats& s) { s.subscriber_connected = true; });
      if (listener_ != nullptr) listener_->OnUpstreamConnected(epoch_);
    } else {
      publisher_ready_.store(true, std::memory_order_release);
      SetStat([](RedisUpstreamStats& s) { s.publisher_connected = true; });
    }
  }

  void OnClosed(Link* link, absl::Status status) {
    if (stopped_) return;
    // Already finished; Close() only makes the end explicit before we let it go.
    link->connection->Close();
    link->connection.reset();
    // Without the status' payloads, which are for us.
    const std::string error =
        absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
    if (link->ready) {
      link->ready = false;
      // Only a connection that stayed up a while earns a fast reconnect: one Redis drops at
      // once, again and again, must not reconnect ~40 times a second.
      if (absl::Now() - link->ready_since >= options_.backoff_reset_after) {
        link->backoff = 0;
      } else {
        ++link->backoff;
      }
      BRIDGE_LOG(Warning, "redis: %s connection to %s lost (%s); reconnecting", link->name,
                 redacted_url_, error);
      link->last_logged_error = error;
      SetStat([&](RedisUpstreamStats& s) {
        ++s.disconnects;
        s.last_error = error;
        (link == &subscriber_ ? s.subscriber_connected : s.publisher_connected) = false;
      });
      if (link == &subscriber_) {
        if (std::optional<std::string> reply = RedisConnection::ErrorReply(status)) {
          BlameRefusal(*reply);
        }
        epoch_ = 0;
        subscribed_.clear();
        unconfirmed_.clear();
        if (listener_ != nullptr) listener_->OnUpstreamDisconnected();
      } else {
        // Pending publishes were answered by their callbacks as the context went.
        publisher_ready_.store(false, std::memory_order_release);
      }
    } else {
      ++link->failures;
      ++link->backoff;
      SetStat([&](RedisUpstreamStats& s) {
        ++s.connect_failures;
        s.last_error = error;
      });
      // Once per outage, and again when the reason changes (refused, then bad password).
      if (error != link->last_logged_error) {
        BRIDGE_LOG(Warning, "redis: %s connection to %s failed (%s); retrying", link->name,
                   redacted_url_, error);
        link->last_logged_error = error;
      } else {
        BRIDGE_LOG(Debug, "redis: %s connection attempt %d to %s failed (%s)", link->name,
                   link->failures, redacted_url_, error);
      }
    }
    DoScheduleRetry(link);
  }

  void DoScheduleRetry(Link* link) {
    // Full jitter: uniform in [0, ceiling], the ceiling doubling per step up to the max.
    const int shift = std::min(link->backoff, 20);
    const absl::Duration ceiling =
        std::min(options_.backoff_initial * (int64_t{1} << shift), options_.backoff_max);
    SetStat([&](RedisUpstreamStats& s) {
      (link == &subscriber_ ? s.subscriber_retry_ceiling : s.publisher_retry_ceiling) = ceiling;
    });
    const absl::Duration delay = absl::Nanoseconds(
        absl::Uniform<int64_t>(absl::IntervalClosed, rng_, 0, absl::ToInt64Nanoseconds(ceiling)));
    BRIDGE_LOG(Debug, "redis: %s reconnect in %s", link->name, absl::FormatDuration(delay));
    link->retry.expires_after(absl::ToChronoNanoseconds(delay));
    link->retry.async_wait(boost::asio::bind_executor(
        strand_, [self = shared_from_this(), link](const boost::system::error_code& ec) {
          self->OnRetry(link, ec);
        }));
  }

  void OnRetry(Link* link, const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted || stopped_) return;
    if (ec) return Fail(ec, "reconnect timer");
    DoConnect(link);
  }

  void DoSubscribe(const hub::Topic& topic, uint64_t epoch, bool subscribe) {
    // An order for an older connection: that connection's subscriptions are gone already.
    if (stopped_ || epoch == 0 || epoch != epoch_) return;
    redisAsyncContext* context =
        subscriber_.connection ? subscriber_.connection->context() : nullptr;
    if (context == nullptr) return;
    if (!subscribe && !subscribed_.contains(topic)) {
      // hiredis 0.14 silently drops the reply to an unsubscribe it holds no callback for,
      // and asserts (aborting the process) on one that arrives after the subscription
      // count reached zero. The hub never asks for this; answer at once instead.
      BRIDGE_LOG(Warning, "redis: unsubscribe from %s, which is not subscribed", topic.name);
      if (listener_ != nullptr) listener_->OnUnsubscribeConfirmed(topic);
      return;
    }
    if (subscribe && IsRefused(topic)) return;
    const char* format = nullptr;
    if (topic.is_pattern()) {
      format = subscribe ? "PSUBSCRIBE %b" : "PUNSUBSCRIBE %b";
    } else {
      format = subscribe ? "SUBSCRIBE %b" : "UNSUBSCRIBE %b";
    }
    // One callback and one privdata for every subscribe command: hiredis keeps them per
    // channel (and per pattern) and routes each later reply for that name to them, the
    // (un)subscribe confirmations and the messages alike.
    if (redisAsyncCommand(context, &Core::OnSubscriberReply, this, format, topic.name.data(),
                          topic.name.size()) != REDIS_OK) {
      // The context is disconnecting; the listener hears of it next.
      BRIDGE_LOG(Debug, "redis: cannot queue a subscribe order for %s", topic.name);
      return;
    }
    if (subscribe) subscribed_.insert(topic);
    unconfirmed_.push_back(Order{topic, subscribe});
  }

  // Whether `topic` is a refusal still remembered; if so, reports it in answer to the
  // order. Strand only.
  bool IsRefused(const hub::Topic& topic) {
    auto it = refused_.find(topic);
    if (it == refused_.end()) return false;
    if (absl::Now() >= it->second.until) {
      BRIDGE_LOG(Info, "redis: trying %s %s again, refused %s ago",
                 topic.is_pattern() ? "pattern" : "channel", topic.name,
                 absl::FormatDuration(options_.subscribe_refusal_ttl));
      refused_.erase(it);
      return false;
    }
    BRIDGE_LOG(Debug, "redis: not subscribing %s, which Redis refused", topic.name);
    if (listener_ != nullptr) listener_->OnSubscribeRefused(topic, it->second.why);
    return true;
  }

  // The subscriber connection was closed on an error reply: it answered the oldest order
  // not yet confirmed. A refused SUBSCRIBE is remembered so that the resubscription after
  // the reconnect does not close the connection again, for every subscriber.
  void BlameRefusal(const std::string& reply) {
    if (unconfirmed_.empty() || !unconfirmed_.front().subscribe) {
      BRIDGE_LOG(Error, "redis: the subscriber connection got an error reply (%s) and no %s", reply,
                 "subscribe order awaits one; cannot tell what was refused");
      return;
    }
    const hub::Topic& topic = unconfirmed_.front().topic;
    BRIDGE_LOG(Warning, "redis: refused to subscribe %s %s (%s); not subscribing it for %s",
               topic.is_pattern() ? "pattern" : "channel", topic.name, reply,
               absl::FormatDuration(options_.subscribe_refusal_ttl));
    refused_[topic] =
        Refusal{SubscribeRefusedError(topic, reply), absl::Now() + options_.subscribe_refusal_ttl};
    SetStat([](RedisUpstreamStats& s) { ++s.subscribes_refused; });
  }

  // A confirmation of `topic`: it answers the first order for it, and every older order
  // still listed got no reply of its own (hiredis 0.14 drops some unsubscribe replies).
  void Confirmed(const hub::Topic& topic, bool subscribe) {
    auto it = std::find_if(unconfirmed_.begin(), unconfirmed_.end(), [&](const Order& o) {
      return o.subscribe == subscribe && o.topic == topic;
    });
    if (it != unconfirmed_.end()) unconfirmed_.erase(unconfirmed_.begin(), it + 1);
  }

  static void OnSubscriberReply(redisAsyncContext* context, void* reply, void* privdata) {
    // A null reply: hiredis frees the context and empties its callback table.
    if (reply == nullptr) return;
    static_cast<Core*>(privdata)->OnSubscriberReplied(context, static_cast<redisReply*>(reply));
  }

  void OnSubscriberReplied(redisAsyncContext* context, const redisReply* reply) {
    if (stopped_ || listener_ == nullptr) return;
    if (subscriber_.connection == nullptr || subscriber_.connection->context() != context) return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || !IsString(reply->element[0])) {
      BRIDGE_LOG(Warning, "redis: unexpected reply on the subscriber connection (type %d)",
                 reply->type);
      return;
    }
    const std::string_view kind = ReplyText(reply->element[0]);
    const redisReply* name = reply->element[1];
    if (kind == "message" && IsString(name) && IsString(reply->element[2])) {
      const std::string_view channel = ReplyText(name);
      listener_->OnMessage(hub::Topic::Channel(std::string(channel)), channel,
                           ReplyText(reply->element[2]));
    } else if (kind == "pmessage" && reply->elements >= 4 && IsString(name) &&
               IsString(reply->element[2]) && IsString(reply->element[3])) {
      listener_->OnMessage(hub::Topic::Pattern(std::string(ReplyText(name))),
                           ReplyText(reply->element[2]), ReplyText(reply->element[3]));
    } else if ((kind == "subscribe" || kind == "psubscribe") && IsString(name)) {
      hub::Topic topic = kind == "subscribe" ? hub::Topic::Channel(std::string(ReplyText(name)))
                                             : hub::Topic::Pattern(std::string(ReplyText(name)));
      Confirmed(topic, /*subscribe=*/true);
      listener_->OnSubscribeConfirmed(topic);
    } else if ((kind == "unsubscribe" || kind == "punsubscribe") && IsString(name)) {
      hub::Topic topic = kind == "unsubscribe" ? hub::Topic::Channel(std::string(ReplyText(name)))
                                               : hub::Topic::Pattern(std::string(ReplyText(name)));
      subscribed_.erase(topic);
      Confirmed(topic, /*subscribe=*/false);
      listener_->OnUnsubscribeConfirmed(topic);
    } else {
      BRIDGE_LOG(Warning, "redis: unexpected '%s' reply on the subscriber connection", kind);
    }
  }

  void DoPublish(const std::string& channel, const std::string& payload, PublishCallback done) {
    if (stopped_) return done(absl::UnavailableError("redis upstream shutting down"));
    redisAsyncContext* context = publisher_.connection ? publisher_.connection->context() : nullptr;
    if (context == nullptr) {
      return done(absl::UnavailableError("redis publish connection is down"));
    }
    const uint64_t id = ++last_publish_id_;
    auto* call = new PublishCall{this, id};
    if (redisAsyncCommand(context, &Core::OnPublishReply, call, "PUBLISH %b %b", channel.data(),
                          channel.size(), payload.data(), payload.size()) != REDIS_OK) {
      delete call;
      return done(absl::UnavailableError("redis publish connection is closing"));
    }
    auto timer = std::make_unique<boost::asio::steady_timer>(strand_);
    timer->expires_after(absl::ToChronoNanoseconds(options_.publish_timeout));
    timer->async_wait(boost::asio::bind_executor(
        strand_, [self = shared_from_this(), id](const boost::system::error_code& ec) {
          self->OnPublishTimeout(id, ec);
        }));
    pending_.emplace(id, PendingPublish{std::move(done), std::move(timer)});
  }

  static void OnPublishReply(redisAsyncContext* /*context*/, void* reply, void* privdata) {
    std::unique_ptr<PublishCall> call(static_cast<PublishCall*>(privdata));
    call->core->OnPublishReplied(call->id, static_cast<redisReply*>(reply));
  }

  void OnPublishReplied(uint64_t id, const redisReply* reply) {
    auto it = pending_.find(id);
    // Already answered: timed out, or Stop.
    if (it == pending_.end()) return;
    PublishCallback done = std::move(it->second.done);
    pending_.erase(it);
    if (reply == nullptr) {
      return done(absl::UnavailableError("redis publish connection lost before the reply"));
    }
    if (reply->type == REDIS_REPLY_INTEGER) return done(static_cast<int64_t>(reply->integer));
    if (reply->type == REDIS_REPLY_ERROR) {
      return done(
          absl::InternalError(absl::StrCat("redis PUBLISH: ", std::string(ReplyText(reply)))));
    }
    done(absl::InternalError(absl::StrCat("redis PUBLISH: unexpected reply type ", reply->type)));
  }

  void OnPublishTimeout(uint64_t id, const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    if (ec) return Fail(ec, "publish timer");
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    PublishCallback done = std::move(it->second.done);
    pending_.erase(it);
    const std::string why = absl::StrCat("redis PUBLISH got no reply within ",
                                         absl::FormatDuration(options_.publish_timeout));
    done(absl::DeadlineExceededError(why));
    if (stopped_) return;
    DoResetPublisher(why);
  }

  // The publish connection stopped answering (a partition without reset, a Redis that
  // hangs): everything sent after stays queued in hiredis behind it. Drops it, which
  // frees hiredis' output buffer, answers what is pending, and reconnects.
  void DoResetPublisher(const std::string& why) {
    if (!publisher_.ready || publisher_.connection == nullptr) return;
    auto pending = std::move(pending_);
    pending_.clear();
    SetStat([](RedisUpstreamStats& s) { ++s.publish_resets; });
    // Answered first, so that the null-reply callbacks run by Close find nothing pending.
    for (auto& [id, publish] : pending) {
      publish.done(absl::UnavailableError(absl::StrCat("redis publish connection reset: ", why)));
    }
    // Logs it, once, and reconnects.
    OnClosed(&publisher_, absl::DeadlineExceededError(absl::StrFormat(
                              "stalled: %s; dropped with %d more pending", why, pending.size())));
  }

  absl::Status ReservePublish(size_t bytes) {
    const int count = publishes_in_flight_.fetch_add(1, std::memory_order_acq_rel);
    const size_t held = publish_bytes_in_flight_.fetch_add(bytes, std::memory_order_acq_rel);
    if (count < options_.max_publishes_in_flight &&
        (held == 0 || held + bytes <= options_.max_publish_bytes_in_flight)) {
      return absl::OkStatus();
    }
    ReleasePublish(bytes);
    SetStat([](RedisUpstreamStats& s) { ++s.publishes_rejected; });
    return absl::UnavailableError(absl::StrFormat(
        "too many publishes waiting for redis: %d publishes (%d bytes) in flight, the limit is "
        "%d publishes (%d bytes); redis is slow or unreachable",
        count, held, options_.max_publishes_in_flight, options_.max_publish_bytes_in_flight));
  }

  void ReleasePublish(size_t bytes) {
    publishes_in_flight_.fetch_sub(1, std::memory_order_acq_rel);
    publish_bytes_in_flight_.fetch_sub(bytes, std::memory_order_acq_rel);
  }

  void DoStop() {
    if (stopped_) return;
    stopped_ = true;
    stopping_.store(true, std::memory_order_release);
    listener_ = nullptr;
    // Answer first, so that the null-reply callbacks run by Close find nothing pending.
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [id, publish] : pending) {
      publish.done(absl::UnavailableError("redis upstream shutting down"));
    }
    for (Link* link : {&subscriber_, &publisher_}) {
      link->retry.cancel();
      if (link->connection) {
        link->connection->Close();
        link->connection.reset();
      }
      link->ready = false;
    }
    publisher_ready_.store(false, std::memory_order_release);
    epoch_ = 0;
    subscribed_.clear();
    unconfirmed_.clear();
    SetStat([](RedisUpstreamStats& s) { s.subscriber_connected = s.publisher_connected = false; });
    BRIDGE_LOG(Info, "redis: upstream to %s stopped", redacted_url_);
  }

  void Fail(const boost::system::error_code& ec, const char* what) {
    if (ec == boost::asio::error::operation_aborted) return;
    BRIDGE_LOG(Error, "redis: %s failed: %s", what, ec.message());
  }

  template <typename F>
  void SetStat(F&& change) ABSL_LOCKS_EXCLUDED(stats_mu_) {
    absl::MutexLock lock(&stats_mu_);
    change(stats_);
  }

  const RedisUpstreamOptions options_;
  const RedisUrl url_;
  const std::string redacted_url_;
  boost::asio::io_context& io_;
  Strand strand_;

  // Set before Start; read and cleared on the strand.
  hub::UpstreamListener* listener_ = nullptr;

  // Strand only.
  Link subscriber_;
  Link publisher_;
  bool stopped_ = false;
  // The connected subscriber connection's epoch, 0 while there is none.
  uint64_t epoch_ = 0;
  uint64_t last_epoch_ = 0;
  // Topics with a (P)SUBSCRIBE sent and no (P)UNSUBSCRIBE confirmed on this connection.
  absl::flat_hash_set<hub::Topic> subscribed_;
  // Orders sent on this connection and not yet confirmed, oldest first.
  std::deque<Order> unconfirmed_;
  // Topics Redis refused to subscribe, and until when we take its word for it.
  absl::flat_hash_map<hub::Topic, Refusal> refused_;
  uint64_t last_publish_id_ = 0;
  absl::flat_hash_map<uint64_t, PendingPublish> pending_;
  absl::BitGen rng_;

  // Read from any thread for Publish's fast failure.
  std::atomic<bool> publisher_ready_{false};
  // Publishes accepted by Publish and not yet answered; see ReservePublish.
  std::atomic<int> publishes_in_flight_{0};
  std::atomic<size_t> publish_bytes_in_flight_{0};
  std::atomic<bool> stopping_{false};
  // Set once a Stop has completed; later Stops return at once.
  std::atomic<bool> stop_finished_{false};

  mutable absl::Mutex stats_mu_;
  RedisUpstreamStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

absl::StatusOr<std::unique_ptr<RedisUpstream>> RedisUpstream::Create(
    const RedisUpstreamOptions& options, boost::asio::io_context& io) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse(options.url);
  if (!url.ok()) return url.status();
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.publish_timeout <= absl::ZeroDuration() ||
      options.backoff_initial <= absl::ZeroDuration() ||
      options.backoff_max < options.backoff_initial) {
    return absl::InvalidArgumentError(
        "redis options: timeouts and backoff must be positive, backoff_max >= backoff_initial");
  }
  if (options.max_publishes_in_flight <= 0 || options.max_publish_bytes_in_flight == 0) {
    return absl::InvalidArgumentError("redis options: publish in-flight limits must be positive");
  }
  return std::unique_ptr<RedisUpstream>(
      new RedisUpstream(std::make_shared<Core>(options, *std::move(url), io)));
}

RedisUpstream::RedisUpstream(std::shared_ptr<Core> core) : core_(std::move(core)) {}

RedisUpstream::~RedisUpstream() { Stop(); }

void RedisUpstream::Start() { core_->Start(); }
void RedisUpstream::Stop() { core_->Stop(); }
void RedisUpstream::SetListener(hub::UpstreamListener* listener) { core_->SetListener(listener); }

void RedisUpstream::Subscribe(const hub::Topic& topic, uint64_t epoch) {
  core_->Subscribe(topic, epoch, /*subscribe=*/true);
}

void RedisUpstream::Unsubscribe(const hub::Topic& topic, uint64_t epoch) {
  core_->Subscribe(topic, epoch, /*subscribe=*/false);
}

void RedisUpstream::Publish(std::string channel, std::string payload, PublishCallback done) {
  core_->Publish(std::move(channel), std::move(payload), std::move(done));
}

bool RedisUpstream::connected() const { return core_->connected(); }
RedisUpstreamStats RedisUpstream::Stats() const { return core_->Stats(); }
std::string RedisUpstream::redacted_url() const { return core_->redacted_url(); }

}  // namespace bridge::redis
