#include "bridge/redis/subscriber_connection.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "bridge/common/log.h"
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

SubscriberConnection::SubscriberConnection(Strand strand, RedisUrl url,
                                           const RedisUpstreamOptions& options,
                                           std::shared_ptr<MasterResolver> resolver)
    : strand_(strand),
      options_(options),
      reconnector_(std::make_shared<Reconnector>("subscriber", strand, std::move(url), options,
                                                 std::move(resolver))) {}

void SubscriberConnection::Start() {
  // The reconnector keeps us until Stop: our context's callbacks carry `this`.
  reconnector_->Start(
      [self = shared_from_this()] { self->OnReady(); },
      [self = shared_from_this()](const absl::Status& status) { self->OnLost(status); });
}

void SubscriberConnection::Stop() {
  if (stopped_) return;
  stopped_ = true;
  listener_ = nullptr;
  reconnector_->Stop();
  if (probe_) probe_->Stop();
  epoch_ = 0;
  probe_unconfirmed_ = false;
  subscribed_.clear();
  unconfirmed_.clear();
}

void SubscriberConnection::Drop(absl::Status why) {
  if (stopped_) return;
  reconnector_->Drop(std::move(why));
}

void SubscriberConnection::Subscribe(const hub::Topic& topic, uint64_t epoch, bool subscribe) {
  boost::asio::post(strand_, [self = shared_from_this(), topic, epoch, subscribe] {
    self->DoSubscribe(topic, epoch, subscribe);
  });
}

void SubscriberConnection::OnReady() {
  if (stopped_) return;
  if (probe_ && probe_->enabled()) {
    // Its own callback: hiredis routes the confirmation and every message of this
    // channel there, never to OnReply.
    const std::string& channel = probe_->channel();
    if (redisAsyncCommand(reconnector_->context(), &SubscriberConnection::OnProbeReply, this,
                          "SUBSCRIBE %b", channel.data(), channel.size()) == REDIS_OK) {
      probe_unconfirmed_ = true;
      probe_->Start();
    }
  }
  epoch_ = ++last_epoch_;
  if (listener_ != nullptr) listener_->OnUpstreamConnected(epoch_);
}

void SubscriberConnection::OnLost(const absl::Status& status) {
  if (stopped_) return;
  if (probe_) probe_->Stop();
  if (std::optional<std::string> reply = RedisConnection::ErrorReply(status)) {
    if (probe_unconfirmed_) {
      probe_->TurnOff(absl::StrCat("Redis refused to subscribe it (", *reply, ")"));
    } else {
      BlameRefusal(*reply);
    }
  }
  epoch_ = 0;
  probe_unconfirmed_ = false;
  subscribed_.clear();
  unconfirmed_.clear();
  if (listener_ != nullptr) listener_->OnUpstreamDisconnected();
}

void SubscriberConnection::DoSubscribe(const hub::Topic& topic, uint64_t epoch, bool subscribe) {
  // An order for an older connection: that connection's subscriptions are gone already.
  if (stopped_ || epoch == 0 || epoch != epoch_) return;
  redisAsyncContext* context = reconnector_->context();
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
  if (subscribe && !topic.is_pattern() && IsProbeChannel(topic.name)) {
    // Its messages would never reach the hub, and its UNSUBSCRIBE would end a probe's
    // subscription: refused, as Redis refuses a channel an ACL lacks.
    if (listener_ != nullptr) listener_->OnSubscribeRefused(topic, SubscribeRefusedError(topic));
    return;
  }
  const char* format = nullptr;
  if (topic.is_pattern()) {
    format = subscribe ? "PSUBSCRIBE %b" : "PUNSUBSCRIBE %b";
  } else {
    format = subscribe ? "SUBSCRIBE %b" : "UNSUBSCRIBE %b";
  }
  // One callback and one privdata for every subscribe command: hiredis keeps them per
  // channel (and per pattern) and routes each later reply for that name to them, the
  // (un)subscribe confirmations and the messages alike.
  if (redisAsyncCommand(context, &SubscriberConnection::OnReply, this, format, topic.name.data(),
                        topic.name.size()) != REDIS_OK) {
    // The context is disconnecting; the listener hears of it next.
    BRIDGE_LOG(Debug, "redis: cannot queue a subscribe order for %s", topic.name);
    return;
  }
  if (subscribe) subscribed_.insert(topic);
  unconfirmed_.push_back(Order{topic, subscribe});
}

// Whether `topic` is a refusal still remembered; if so, reports it in answer to the order.
bool SubscriberConnection::IsRefused(const hub::Topic& topic) {
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

// The connection was closed on an error reply: it answered the oldest order not yet
// confirmed. A refused SUBSCRIBE is remembered so that the resubscription after the
// reconnect does not close the connection again, for every subscriber.
void SubscriberConnection::BlameRefusal(const std::string& reply) {
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
  subscribes_refused_.fetch_add(1, std::memory_order_relaxed);
}

// A confirmation of `topic`: it answers the first order for it, and every older order
// still listed got no reply of its own (hiredis 0.14 drops some unsubscribe replies).
void SubscriberConnection::Confirmed(const hub::Topic& topic, bool subscribe) {
  auto it = std::find_if(unconfirmed_.begin(), unconfirmed_.end(), [&](const Order& o) {
    return o.subscribe == subscribe && o.topic == topic;
  });
  if (it != unconfirmed_.end()) unconfirmed_.erase(unconfirmed_.begin(), it + 1);
}

void SubscriberConnection::OnReply(redisAsyncContext* context, void* reply, void* privdata) {
  // A null reply: hiredis frees the context and empties its callback table.
  if (reply == nullptr) return;
  static_cast<SubscriberConnection*>(privdata)->OnReplied(context, static_cast<redisReply*>(reply));
}

void SubscriberConnection::OnReplied(redisAsyncContext* context, const redisReply* reply) {
  if (stopped_ || listener_ == nullptr) return;
  if (reconnector_->context() != context) return;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || !IsString(reply->element[0])) {
    BRIDGE_LOG(Warning, "redis: unexpected reply on the subscriber connection (type %d)",
               reply->type);
    return;
  }
  const std::string_view kind = ReplyText(reply->element[0]);
  const redisReply* name = reply->element[1];
  if ((kind == "message" || kind == "pmessage") && reply->elements >= 3 &&
      IsProbeChannel(ReplyText(reply->element[kind == "message" ? 1 : 2]))) {
    // A probe, this process' or another Bridge's, that reached the hub's callback (through
    // a client's pattern that matches its channel): Bridge's own traffic, which no client
    // sees.
    return;
  }
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

void SubscriberConnection::OnProbeReply(redisAsyncContext* context, void* reply, void* privdata) {
  // A null reply: hiredis frees the context and empties its callback table.
  if (reply == nullptr) return;
  static_cast<SubscriberConnection*>(privdata)->OnProbeReplied(context,
                                                               static_cast<redisReply*>(reply));
}

void SubscriberConnection::OnProbeReplied(redisAsyncContext* context, const redisReply* reply) {
  if (stopped_ || !probe_ || reconnector_->context() != context) return;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || !IsString(reply->element[0])) {
    return;
  }
  const std::string_view kind = ReplyText(reply->element[0]);
  if (kind == "subscribe") {
    probe_unconfirmed_ = false;
  } else if (kind == "message" && IsString(reply->element[2])) {
    probe_->OnMessage(ReplyText(reply->element[2]));
  }
}

}  // namespace bridge::redis
