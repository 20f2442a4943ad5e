#ifndef BRIDGE_REDIS_REDIS_UPSTREAM_H_
#define BRIDGE_REDIS_REDIS_UPSTREAM_H_

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bridge/hub/topic.h"
#include "bridge/hub/upstream.h"
#include "bridge/redis/redis_upstream_options.h"
#include "bridge/redis/redis_url.h"

namespace bridge::redis {

class Publisher;
class SentinelResolver;
class SubscriberConnection;

// The hub's upstream on one Redis server, over two connections driven by hiredis on its
// own strand of the caller's io_context: a SubscriberConnection carries every (P)SUBSCRIBE
// and (P)UNSUBSCRIBE, a Publisher every PUBLISH. Each connection reconnects by itself
// (a Reconnector each), forever, with backoff, until Stop(); the subscriber's announces
// each new connection to the listener with a fresh epoch. This class only wires them.
// With a redis+sentinel:// URL a SentinelResolver tells both where the master is, and
// moves both when it changes.
//
// Thread-safe. Every listener call comes from the strand, one at a time, and none comes
// after Stop() returned. The io_context must be run by the caller and outlive this
// object; the object may be destroyed once Stop() returned (the destructor calls it too).
class RedisUpstream : public hub::Upstream {
 public:
  // INVALID_ARGUMENT for a bad URL or options.
  static absl::StatusOr<std::unique_ptr<RedisUpstream>> Create(const RedisUpstreamOptions& options,
                                                               boost::asio::io_context& io);
  ~RedisUpstream() override;
  RedisUpstream(const RedisUpstream&) = delete;
  RedisUpstream& operator=(const RedisUpstream&) = delete;

  // Begins connecting both connections. Call SetListener first, and Start once.
  void Start();
  // Closes both connections, cancels the timers and answers pending publishes with
  // UNAVAILABLE. Safe from any thread, including the strand; idempotent.
  void Stop();

  // hub::Upstream.
  void SetListener(hub::UpstreamListener* listener) override;
  void Subscribe(const hub::Topic& topic, uint64_t epoch) override;
  void Unsubscribe(const hub::Topic& topic, uint64_t epoch) override;
  void Publish(std::string channel, std::string payload, PublishCallback done) override;
  void PublishWithKey(std::string channel, std::string payload, std::string key,
                      PublishCallback done) override;
  // FCALL bridge_publish on the publish connection (durable_script.h), with PUBLISH;
  // bounded as Publish. INVALID_ARGUMENT for a channel that cannot be durable (a '}'
  // outside a hash tag, see DurableHashTag).
  void PublishDurable(hub::DurablePublish request, DurablePublishCallback done) override;
  // FCALL_RO bridge_history on the publish connection, bounded as Publish. `done` runs on
  // the strand of the listener calls, as a handler of its own.
  void ReadHistory(hub::HistoryQuery query, HistoryCallback done) override;

  // True while the publish connection is ready.
  bool connected() const;
  RedisUpstreamStats Stats() const;
  // The URL with its password hidden, for logs.
  std::string redacted_url() const;
  // Sentinel: "host:port" of the master in use, empty while none is known or without
  // Sentinel.
  std::string sentinel_master() const;

 private:
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

  RedisUpstream(const RedisUpstreamOptions& options, std::string redacted_url,
                boost::asio::io_context& io, Strand strand,
                std::shared_ptr<SubscriberConnection> subscriber,
                std::shared_ptr<Publisher> publisher, std::shared_ptr<SentinelResolver> sentinel);

  // On the strand (or once nobody runs it): stops the parts, once, and sets
  // `stop_finished`. Static: a Stop that timed out leaves it queued past this object, with
  // what it touches. `sentinel` may be null.
  static void DoStop(SubscriberConnection& subscriber, Publisher& publisher,
                     SentinelResolver* sentinel, const std::string& redacted_url,
                     std::atomic<bool>& stop_finished);

  const RedisUpstreamOptions options_;
  const std::string redacted_url_;
  boost::asio::io_context& io_;
  Strand strand_;
  const std::shared_ptr<SubscriberConnection> subscriber_;
  const std::shared_ptr<Publisher> publisher_;
  // Null without Sentinel.
  const std::shared_ptr<SentinelResolver> sentinel_;
  // Set once a Stop has completed; later Stops return at once, and a Start queued before
  // one does nothing.
  const std::shared_ptr<std::atomic<bool>> stop_finished_ =
      std::make_shared<std::atomic<bool>>(false);
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_REDIS_UPSTREAM_H_
