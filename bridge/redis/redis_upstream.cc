#include "bridge/redis/redis_upstream.h"

#include <boost/asio/post.hpp>
#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "bridge/common/log.h"
#include "bridge/redis/publisher.h"
#include "bridge/redis/reconnector.h"
#include "bridge/redis/redis_url.h"
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
  if (options.max_publishes_in_flight <= 0 || options.max_publish_bytes_in_flight == 0) {
    return absl::InvalidArgumentError("redis options: publish in-flight limits must be positive");
  }
  Strand strand = boost::asio::make_strand(io);
  return std::unique_ptr<RedisUpstream>(
      new RedisUpstream(options, url->Redacted(), io, strand,
                        std::make_shared<SubscriberConnection>(strand, *url, options),
                        std::make_shared<Publisher>(strand, *url, options)));
}

RedisUpstream::RedisUpstream(const RedisUpstreamOptions& options, std::string redacted_url,
                             boost::asio::io_context& io, Strand strand,
                             std::shared_ptr<SubscriberConnection> subscriber,
                             std::shared_ptr<Publisher> publisher)
    : options_(options),
      redacted_url_(std::move(redacted_url)),
      io_(io),
      strand_(std::move(strand)),
      subscriber_(std::move(subscriber)),
      publisher_(std::move(publisher)) {}

RedisUpstream::~RedisUpstream() { Stop(); }

void RedisUpstream::Start() {
  boost::asio::post(strand_, [subscriber = subscriber_, publisher = publisher_,
                              stop_finished = stop_finished_, url = redacted_url_] {
    if (stop_finished->load(std::memory_order_acquire)) return;
    BRIDGE_LOG(Info, "redis: connecting to %s", url);
    subscriber->Start();
    publisher->Start();
  });
}

void RedisUpstream::Stop() {
  // Idempotent: the destructor stops again, often after the io_context has ended.
  if (stop_finished_->load(std::memory_order_acquire)) return;
  if (strand_.running_in_this_thread()) {
    DoStop(*subscriber_, *publisher_, redacted_url_, *stop_finished_);
    return;
  }
  auto done = std::make_shared<absl::Notification>();
  boost::asio::post(strand_, [subscriber = subscriber_, publisher = publisher_,
                              stop_finished = stop_finished_, url = redacted_url_, done] {
    DoStop(*subscriber, *publisher, url, *stop_finished);
    done->Notify();
  });
  if (done->WaitForNotificationWithTimeout(options_.stop_timeout)) return;
  if (io_.stopped()) {
    // Nobody runs the strand any more, so no handler can race us: close from here.
    BRIDGE_LOG(Warning, "redis: io_context not running at Stop; closing from the caller");
    DoStop(*subscriber_, *publisher_, redacted_url_, *stop_finished_);
    return;
  }
  BRIDGE_LOG(Error, "redis: Stop did not finish within %s; the strand is blocked",
             absl::FormatDuration(options_.stop_timeout));
}

void RedisUpstream::DoStop(SubscriberConnection& subscriber, Publisher& publisher,
                           const std::string& redacted_url, std::atomic<bool>& stop_finished) {
  if (stop_finished.load(std::memory_order_acquire)) return;
  // The subscriber first: it silences the listener.
  subscriber.Stop();
  publisher.Stop();
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
  return stats;
}

std::string RedisUpstream::redacted_url() const { return redacted_url_; }

}  // namespace bridge::redis
