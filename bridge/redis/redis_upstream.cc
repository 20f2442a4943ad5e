#include "bridge/redis/redis_upstream.h"

#include <boost/asio/post.hpp>
#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "bridge/common/log.h"
#include "bridge/redis/delivery_probe.h"
#include "bridge/redis/publisher.h"
#include "bridge/redis/reconnector.h"
#include "bridge/redis/redis_url.h"
#include "bridge/redis/sentinel_resolver.h"
#include "bridge/redis/subscriber_connection.h"

namespace bridge::redis {

absl::StatusOr<std::unique_ptr<RedisUpstream>> RedisUpstream::Create(
    const RedisUpstreamOptions& options, boost::asio::io_context& io) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse(options.url);
  if (!url.ok()) return url.status();
  if (url->is_cluster()) {
    return absl::InvalidArgumentError("a redis+cluster:// URL needs the cluster upstream");
  }
  if (!options.sharded_channels.empty()) {
    return absl::InvalidArgumentError(
        "sharded channels need a Redis Cluster (a redis+cluster:// URL)");
  }
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.publish_timeout <= absl::ZeroDuration() ||
      options.backoff_initial <= absl::ZeroDuration() ||
      options.backoff_max < options.backoff_initial) {
    return absl::InvalidArgumentError(
        "redis options: timeouts and backoff must be positive, backoff_max >= backoff_initial");
  }
  if (options.probe_interval < absl::ZeroDuration() ||
      (options.probe_interval > absl::ZeroDuration() &&
       options.probe_timeout <= absl::ZeroDuration())) {
    return absl::InvalidArgumentError(
        "redis options: probe_interval must not be negative, and probe_timeout must be "
        "positive");
  }
  if (options.max_publishes_in_flight <= 0 || options.max_publish_bytes_in_flight == 0) {
    return absl::InvalidArgumentError("redis options: publish in-flight limits must be positive");
  }
  if (options.publish_key_window < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("--publish_key_window must be at least 1ms");
  }
  if (url->is_sentinel() && options.sentinel_refresh_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("redis options: sentinel_refresh_interval must be positive");
  }
  Strand strand = boost::asio::make_strand(io);
  std::shared_ptr<SentinelResolver> sentinel;
  if (url->is_sentinel()) sentinel = std::make_shared<SentinelResolver>(strand, *url, options);
  auto subscriber = std::make_shared<SubscriberConnection>(strand, *url, options, sentinel);
  auto publisher = std::make_shared<Publisher>(strand, *url, options, sentinel);
  if (options.probe_interval > absl::ZeroDuration()) {
    subscriber->AttachProbe(std::make_shared<DeliveryProbe>(
        strand, NewProbeChannel(),
        DeliveryProbeOptions{.interval = options.probe_interval, .timeout = options.probe_timeout},
        // The probe goes over the publish connection, which the upstream keeps as long.
        [publisher](std::string channel, std::string payload, DeliveryProbe::DoneCallback done) {
          publisher->Publish(std::move(channel), std::move(payload),
                             [done = std::move(done)](absl::StatusOr<int64_t> receivers) mutable {
                               done(receivers.status());
                             });
        },
        // Weak: the subscriber owns the probe.
        [weak = std::weak_ptr<SubscriberConnection>(subscriber)](absl::Status why) {
          if (auto subscriber = weak.lock()) subscriber->Drop(std::move(why));
        }));
  }
  return std::unique_ptr<RedisUpstream>(new RedisUpstream(
      options, url->Redacted(), io, strand, std::move(subscriber), std::move(publisher), sentinel));
}

RedisUpstream::RedisUpstream(const RedisUpstreamOptions& options, std::string redacted_url,
                             boost::asio::io_context& io, Strand strand,
                             std::shared_ptr<SubscriberConnection> subscriber,
                             std::shared_ptr<Publisher> publisher,
                             std::shared_ptr<SentinelResolver> sentinel)
    : options_(options),
      redacted_url_(std::move(redacted_url)),
      io_(io),
      strand_(std::move(strand)),
      subscriber_(std::move(subscriber)),
      publisher_(std::move(publisher)),
      sentinel_(std::move(sentinel)) {}

RedisUpstream::~RedisUpstream() { Stop(); }

void RedisUpstream::Start() {
  boost::asio::post(strand_,
                    [subscriber = subscriber_, publisher = publisher_, sentinel = sentinel_,
                     stop_finished = stop_finished_, url = redacted_url_] {
                      if (stop_finished->load(std::memory_order_acquire)) return;
                      BRIDGE_LOG(Info, "redis: connecting to %s", url);
                      // First: the connections ask it where to go.
                      if (sentinel != nullptr) sentinel->Start();
                      subscriber->Start();
                      publisher->Start();
                    });
}

void RedisUpstream::Stop() {
  // Idempotent: the destructor stops again, often after the io_context has ended.
  if (stop_finished_->load(std::memory_order_acquire)) return;
  if (strand_.running_in_this_thread()) {
    DoStop(*subscriber_, *publisher_, sentinel_.get(), redacted_url_, *stop_finished_);
    return;
  }
  auto done = std::make_shared<absl::Notification>();
  boost::asio::post(strand_,
                    [subscriber = subscriber_, publisher = publisher_, sentinel = sentinel_,
                     stop_finished = stop_finished_, url = redacted_url_, done] {
                      DoStop(*subscriber, *publisher, sentinel.get(), url, *stop_finished);
                      done->Notify();
                    });
  if (done->WaitForNotificationWithTimeout(options_.stop_timeout)) return;
  if (io_.stopped()) {
    // Nobody runs the strand any more, so no handler can race us: close from here.
    BRIDGE_LOG(Warning, "redis: io_context not running at Stop; closing from the caller");
    DoStop(*subscriber_, *publisher_, sentinel_.get(), redacted_url_, *stop_finished_);
    return;
  }
  BRIDGE_LOG(Error, "redis: Stop did not finish within %s; the strand is blocked",
             absl::FormatDuration(options_.stop_timeout));
}

void RedisUpstream::DoStop(SubscriberConnection& subscriber, Publisher& publisher,
                           SentinelResolver* sentinel, const std::string& redacted_url,
                           std::atomic<bool>& stop_finished) {
  if (stop_finished.load(std::memory_order_acquire)) return;
  // The subscriber first: it silences the listener.
  subscriber.Stop();
  publisher.Stop();
  if (sentinel != nullptr) sentinel->Stop();
  BRIDGE_LOG(Info, "redis: upstream to %s stopped", redacted_url);
  stop_finished.store(true, std::memory_order_release);
}

void RedisUpstream::SetListener(hub::UpstreamListener* listener) {
  subscriber_->SetListener(listener);
}

void RedisUpstream::Subscribe(const hub::Topic& topic, uint64_t epoch) {
  subscriber_->Subscribe(topic, epoch, /*subscribe=*/true);
}

void RedisUpstream::Unsubscribe(const hub::Topic& topic, uint64_t epoch) {
  subscriber_->Subscribe(topic, epoch, /*subscribe=*/false);
}

void RedisUpstream::Publish(std::string channel, std::string payload, PublishCallback done) {
  publisher_->Publish(std::move(channel), std::move(payload), std::move(done));
}

void RedisUpstream::PublishWithKey(std::string channel, std::string payload, std::string key,
                                   PublishCallback done) {
  publisher_->Publish(std::move(channel), std::move(payload), std::move(key), std::move(done));
}

void RedisUpstream::PublishDurable(hub::DurablePublish request, DurablePublishCallback done) {
  publisher_->PublishDurable(std::move(request), std::move(done));
}

void RedisUpstream::ReadHistory(hub::HistoryQuery query, HistoryCallback done) {
  // The Publisher and the SubscriberConnection share strand_ (Create gives both the
  // same), so a reply's callback already runs on the strand of the listener calls; but a
  // fast failure runs on the caller's thread, perhaps inside a listener call (the hub
  // reading history as a message arrives). Posting every answer makes it a handler of
  // its own on that strand, which is what the hub's merge of pages and messages needs.
  publisher_->ReadHistory(std::move(query), [strand = strand_, &io = io_, done = std::move(done)](
                                                absl::StatusOr<hub::HistoryPage> page) mutable {
    if (io.stopped()) {
      // Nothing runs the strand any more, so nothing else can run beside this: answered
      // here rather than never.
      return done(std::move(page));
    }
    boost::asio::post(strand, [done = std::move(done), page = std::move(page)]() mutable {
      done(std::move(page));
    });
  });
}

bool RedisUpstream::connected() const { return publisher_->ready(); }

RedisUpstreamStats RedisUpstream::Stats() const {
  const ReconnectorStats sub = subscriber_->ConnectionStats();
  const ReconnectorStats pub = publisher_->ConnectionStats();
  RedisUpstreamStats stats;
  stats.subscriber_connected = sub.connected;
  stats.publisher_connected = pub.connected;
  stats.connect_failures = sub.connect_failures + pub.connect_failures;
  stats.disconnects = sub.disconnects + pub.disconnects;
  stats.last_error = sub.last_error_at >= pub.last_error_at ? sub.last_error : pub.last_error;
  stats.publishes_rejected = publisher_->publishes_rejected();
  stats.publish_resets = publisher_->publish_resets();
  stats.subscribes_refused = subscriber_->subscribes_refused();
  stats.subscriber_retry_ceiling = sub.retry_ceiling;
  stats.publisher_retry_ceiling = pub.retry_ceiling;
  const DeliveryProbeStats probe = subscriber_->ProbeStats();
  stats.probes_sent = probe.sent;
  stats.probes_lost = probe.lost;
  stats.probe_last_round_trip = probe.last_round_trip;
  return stats;
}

std::string RedisUpstream::redacted_url() const { return redacted_url_; }

std::string RedisUpstream::sentinel_master() const {
  return sentinel_ != nullptr ? sentinel_->master_address() : std::string();
}

}  // namespace bridge::redis
