#ifndef BRIDGE_REDIS_REDIS_UPSTREAM_H_
#define BRIDGE_REDIS_REDIS_UPSTREAM_H_

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bridge/hub/topic.h"
#include "bridge/hub/upstream.h"
#include "bridge/redis/redis_url.h"

namespace bridge::redis {

struct RedisUpstreamOptions {
  // See RedisUrl for the accepted forms.
  std::string url = "redis://127.0.0.1:6379";
  // Bounds one attempt: connect, AUTH, SELECT, PING.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Reconnect delays: full jitter over a ceiling that doubles from initial to max.
  absl::Duration backoff_initial = absl::Milliseconds(50);
  absl::Duration backoff_max = absl::Seconds(2);
  // A publish without a reply by then answers DEADLINE_EXCEEDED.
  absl::Duration publish_timeout = absl::Seconds(5);
  bool tcp_keepalive = true;
  // How long Stop() from another thread waits for the strand to close the connections.
  absl::Duration stop_timeout = absl::Seconds(5);
};

struct RedisUpstreamStats {
  bool subscriber_connected = false;
  bool publisher_connected = false;
  // Connection attempts that failed, on either connection, since Start.
  uint64_t connect_failures = 0;
  // Times a ready connection was lost.
  uint64_t disconnects = 0;
  // The most recent connection error, empty if none.
  std::string last_error;
};

// The hub's upstream on one Redis server, over two connections driven by hiredis on its
// own strand of the caller's io_context: one carries every (P)SUBSCRIBE and
// (P)UNSUBSCRIBE, the other every PUBLISH. Each connection reconnects by itself, forever,
// with backoff, until Stop(); the subscriber's announces each new connection to the
// listener with a fresh epoch.
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

  // True while the publish connection is ready.
  bool connected() const;
  RedisUpstreamStats Stats() const;
  // The URL with its password hidden, for logs.
  std::string redacted_url() const;

 private:
  // The state that the strand's handlers share; it outlives this object until the last
  // handler has run.
  class Core;

  explicit RedisUpstream(std::shared_ptr<Core> core);

  std::shared_ptr<Core> core_;
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_REDIS_UPSTREAM_H_
