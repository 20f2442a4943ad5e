#ifndef BRIDGE_REDIS_REDIS_UPSTREAM_OPTIONS_H_
#define BRIDGE_REDIS_REDIS_UPSTREAM_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace bridge::redis {

// What RedisUpstream takes, and what it reports; its parts (Reconnector,
// SubscriberConnection, Publisher) read the options too.
struct RedisUpstreamOptions {
  // See RedisUrl for the accepted forms.
  std::string url = "redis://127.0.0.1:6379";
  // With a redis+cluster:// URL: globs (Redis' PSUBSCRIBE syntax) of the channels that use
  // sharded pub/sub (SSUBSCRIBE on the master of their slot, SPUBLISH). Empty: none does.
  // Only ClusterUpstream takes them.
  std::vector<std::string> sharded_channels;
  // Bounds one attempt: connect, AUTH, SELECT, PING.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Reconnect delays: full jitter over a ceiling that doubles from initial to max.
  absl::Duration backoff_initial = absl::Milliseconds(50);
  absl::Duration backoff_max = absl::Seconds(2);
  // A connection lost after staying ready this long reconnects from backoff_initial; one
  // lost sooner keeps climbing, so a connection Redis drops at once (a refused command)
  // backs off instead of looping.
  absl::Duration backoff_reset_after = absl::Seconds(10);
  // A publish without a reply by then answers DEADLINE_EXCEEDED, and the publish
  // connection, stalled, is dropped (answering the other pending publishes UNAVAILABLE)
  // and reconnected: hiredis would otherwise keep every later command queued behind it.
  absl::Duration publish_timeout = absl::Seconds(5);
  // Publishes accepted and not yet answered, counting their channel and payload bytes;
  // past either bound a publish answers UNAVAILABLE at once. A single publish larger than
  // the byte bound is still accepted when no other is in flight.
  int max_publishes_in_flight = 1024;
  // How long Redis remembers a publish's idempotency key: a retry with the same key on the
  // same channel within it is not published again.
  absl::Duration publish_key_window = absl::Minutes(10);
  size_t max_publish_bytes_in_flight = size_t{64} << 20;
  // How long a (P)SUBSCRIBE that Redis refused (an ACL without that channel) is refused
  // from memory instead of sent again: each refusal costs the subscriber connection,
  // since hiredis 0.14 closes it on the error reply.
  absl::Duration subscribe_refusal_ttl = absl::Minutes(5);
  bool tcp_keepalive = true;
  // The delivery probe (DeliveryProbe) of the subscriber connection (on a cluster, of
  // each one: every shard's and the classic one): a probe published every probe_interval
  // on a channel of this process must come back within probe_timeout, or the connection
  // is dropped as lost. Zero probe_interval: no probe.
  absl::Duration probe_interval = absl::Seconds(1);
  absl::Duration probe_timeout = absl::Seconds(3);
  // Sentinel only (redis+sentinel:// URLs): how often the sentinels are asked where the
  // master is, besides following their +switch-master events, so that a missed event
  // keeps Bridge on a demoted master at most this long.
  absl::Duration sentinel_refresh_interval = absl::Seconds(2);
  // Follow +switch-master on a sentinel. Tests turn it off to show that asking again
  // finds a new master alone.
  bool sentinel_events = true;
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
  // Publishes answered UNAVAILABLE because max_publishes_in_flight (or the byte bound)
  // was reached.
  uint64_t publishes_rejected = 0;
  // Times the publish connection was dropped because a publish got no reply in time.
  uint64_t publish_resets = 0;
  // (P)SUBSCRIBEs Redis refused (each one cost the subscriber connection).
  uint64_t subscribes_refused = 0;
  // The ceiling of the most recent reconnect delay of each connection (the delay itself
  // is uniform below it).
  absl::Duration subscriber_retry_ceiling;
  absl::Duration publisher_retry_ceiling;
  // Delivery probes published, and those that did not come back in time (each one
  // dropped its connection); on a cluster, summed over its subscriber connections, those
  // closed since included.
  uint64_t probes_sent = 0;
  uint64_t probes_lost = 0;
  // The round trip of the most recent probe back; InfiniteDuration before the first. On a
  // cluster, the slowest of its open connections' most recent round trips: the one an
  // alert wants, since a lagging shard hides behind the others' quick answers.
  absl::Duration probe_last_round_trip = absl::InfiniteDuration();
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_REDIS_UPSTREAM_OPTIONS_H_
