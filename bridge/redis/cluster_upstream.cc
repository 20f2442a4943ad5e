#include "bridge/redis/cluster_upstream.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "bridge/auth/glob.h"
#include "bridge/common/log.h"
#include "bridge/redis/cluster_slot.h"
#include "bridge/redis/cluster_topology.h"
#include "bridge/redis/delivery_probe.h"
#include "bridge/redis/durable_script.h"
#include "bridge/redis/probe_channel.h"
#include "bridge/redis/resp_connection.h"
#include "bridge/redis/subscribe_refused.h"

namespace bridge::redis {
namespace {

std::string Address(const RedisUrl::Node& node) {
  return node.host.find(':') != std::string::npos ? absl::StrCat("[", node.host, "]:", node.port)
                                                  : absl::StrCat(node.host, ":", node.port);
}

absl::string_view Text(const redisReply& r) {
  return r.str != nullptr ? absl::string_view(r.str, r.len) : absl::string_view();
}

// The error of a reply to a command that wanted an answer, worded for a client.
absl::Status ReplyError(absl::string_view command, absl::string_view message) {
  const std::string text = absl::StrCat("Redis refused ", command, ": ", message);
  if (absl::StartsWith(message, "NOPERM")) return absl::PermissionDeniedError(text);
  if (absl::StartsWith(message, "CLUSTERDOWN") || absl::StartsWith(message, "TRYAGAIN") ||
      absl::StartsWith(message, "ASK") || absl::StartsWith(message, "MOVED")) {
    return absl::UnavailableError(text);
  }
  return absl::FailedPreconditionError(text);
}

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

// An error reply that says the slot is elsewhere or between owners, or the node not ready:
// worth asking again, unlike a refusal.
bool IsTransientError(absl::string_view error) {
  for (absl::string_view prefix : {"MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "LOADING"}) {
    if (absl::StartsWith(error, prefix)) return true;
  }
  return false;
}

std::string_view View(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// A blocking command on a blocking hiredis context, for Create's look at the cluster.
ReplyPtr Blocking(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  return ReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data())));
}

// Asks one seed whether it is a cluster node and knows SPUBLISH.
absl::StatusOr<ClusterInfo> AskSeed(const RedisUrl& url, const RedisUrl::Node& seed,
                                    absl::Duration timeout) {
  const timeval tv = absl::ToTimeval(timeout);
  redisContext* c = redisConnectWithTimeout(seed.host.c_str(), seed.port, tv);
  if (c == nullptr || c->err != 0) {
    absl::Status st = absl::UnavailableError(
        absl::StrCat(Address(seed), ": ", c != nullptr ? c->errstr : "cannot connect"));
    if (c != nullptr) redisFree(c);
    return st;
  }
  redisSetTimeout(c, tv);
  absl::StatusOr<ClusterInfo> out =
      absl::UnavailableError(absl::StrCat(Address(seed), ": no reply"));
  do {
    if (!url.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!url.user.empty()) auth.push_back(url.user);
      auth.push_back(url.password);
      ReplyPtr r = Blocking(c, auth);
      if (r == nullptr) break;
      if (r->type == REDIS_REPLY_ERROR) {
        out = absl::UnauthenticatedError(absl::StrCat(Address(seed), ": AUTH: ", Text(*r)));
        break;
      }
    }
    ReplyPtr info = Blocking(c, {"CLUSTER", "INFO"});
    if (info == nullptr) break;
    if (info->type == REDIS_REPLY_ERROR) {
      out = absl::FailedPreconditionError(
          absl::StrCat(Address(seed), " is not a cluster node (CLUSTER INFO: ", Text(*info),
                       "); use redis:// for a single server"));
      break;
    }
    // COMMAND INFO answers nil for a command the server does not know.
    ReplyPtr spublish = Blocking(c, {"COMMAND", "INFO", "SPUBLISH"});
    if (spublish == nullptr) break;
    ClusterInfo found;
    found.seed = seed;
    found.sharded_pubsub = spublish->type == REDIS_REPLY_ARRAY && spublish->elements == 1 &&
                           spublish->element[0]->type == REDIS_REPLY_ARRAY;
    out = found;
  } while (false);
  redisFree(c);
  return out;
}

}  // namespace

// Everything that runs on the strand: the topology, the connections and what rides on
// them. Shared by ClusterUpstream and the handlers it queues.
class ClusterCore : public std::enable_shared_from_this<ClusterCore> {
 public:
  ClusterCore(Strand strand, RedisUrl url, const RedisUpstreamOptions& options, ClusterInfo info)
      : strand_(std::move(strand)),
        url_(std::move(url)),
        options_(options),
        info_(std::move(info)),
        refresh_timer_(strand_) {}

  Strand& strand() { return strand_; }
  void SetListener(hub::UpstreamListener* listener) { listener_ = listener; }

  bool IsSharded(absl::string_view channel) const {
    if (!info_.sharded_pubsub) return false;
    for (const auto& glob : options_.sharded_channels) {
      if (auth::GlobMatch(glob, std::string_view(channel.data(), channel.size()))) return true;
    }
    return false;
  }

  bool connected() const { return connected_.load(std::memory_order_acquire); }

  RedisUpstreamStats Stats() const {
    absl::MutexLock lock(&stats_mu_);
    RedisUpstreamStats out = stats_;
    out.subscriber_connected = connected();
    out.publisher_connected = connected();
    out.publishes_rejected = rejected_.load(std::memory_order_relaxed);
    // The probes' counters are atomics (their Stats takes no lock), read under ours so
    // that a probe retired meanwhile is counted once.
    for (const auto& probe : probes_) {
      const DeliveryProbeStats p = probe->Stats();
      out.probes_sent += p.sent;
      out.probes_lost += p.lost;
      if (p.last_round_trip != absl::InfiniteDuration() &&
          (out.probe_last_round_trip == absl::InfiniteDuration() ||
           p.last_round_trip > out.probe_last_round_trip)) {
        out.probe_last_round_trip = p.last_round_trip;
      }
    }
    return out;
  }

  // Any thread: whether another publish may wait for Redis.
  bool ReservePublish() {
    if (in_flight_.fetch_add(1, std::memory_order_acq_rel) >= options_.max_publishes_in_flight) {
      in_flight_.fetch_sub(1, std::memory_order_acq_rel);
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }

  void Start() {
    if (stopped_) return;
    BRIDGE_LOG(
        Info, "redis cluster: sharded pub/sub (SPUBLISH) %s; sharded channels: %s",
        info_.sharded_pubsub ? "supported" : "not supported (Redis < 7)",
        options_.sharded_channels.empty() ? "none" : absl::StrJoin(options_.sharded_channels, ","));
    DoRefresh();
  }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    listener_ = nullptr;
    refresh_timer_.cancel();
    if (refresh_conn_ != nullptr) refresh_conn_->Close();
    refresh_conn_.reset();
    CloseAll();
    connected_.store(false, std::memory_order_release);
  }

  void Subscribe(const hub::Topic& topic, uint64_t epoch) {
    if (stopped_ || epoch != epoch_ || epoch_ == 0) return;
    if (!topic.is_pattern() && IsProbeChannel(topic.name)) {
      // A probe channel's messages never reach the hub, and its unsubscribe would end a
      // probe's subscription: refused, as on a single Redis.
      if (listener_ != nullptr) listener_->OnSubscribeRefused(topic, SubscribeRefusedError(topic));
      return;
    }
    if (refresh_running_ || refresh_scheduled_) {
      // The route may be stale; the refresh routes it.
      unrouted_.push_back(topic);
      return;
    }
    Route(topic);
  }

  void Unsubscribe(const hub::Topic& topic, uint64_t epoch) {
    if (stopped_ || epoch != epoch_ || epoch_ == 0) return;
    auto held = where_.find(topic);
    Link* link = held == where_.end() ? nullptr : held->second;
    if (link == nullptr || !link->ready || !link->confirmed.contains(topic)) {
      // Nothing is subscribed on a connection: nothing to undo.
      unrouted_.erase(std::remove(unrouted_.begin(), unrouted_.end(), topic), unrouted_.end());
      if (link != nullptr) Forget(link, topic);
      if (listener_ != nullptr) listener_->OnUnsubscribeConfirmed(topic);
      return;
    }
    const char* command =
        link->shard ? "SUNSUBSCRIBE" : (topic.is_pattern() ? "PUNSUBSCRIBE" : "UNSUBSCRIBE");
    link->conn->Command({command, topic.name},
                        [weak = weak_from_this(), key = link->key, conn = link->conn.get(),
                         topic](const redisReply* reply) {
                          auto self = weak.lock();
                          if (self == nullptr || reply == nullptr) return;
                          Link* link = self->FindLink(key, conn);
                          if (link == nullptr) return;
                          // An error reply leaves the topic held; it is forgotten all the same,
                          // since the hub no longer wants it.
                          self->Forget(link, topic);
                          if (self->listener_ != nullptr)
                            self->listener_->OnUnsubscribeConfirmed(topic);
                        });
  }

  void Publish(std::string channel, std::string payload, hub::Upstream::PublishCallback done) {
    const bool sharded = IsSharded(channel);
    const char* command = sharded ? "SPUBLISH" : "PUBLISH";
    const int slot = KeySlot(channel);
    Command(command, {command, std::move(channel), std::move(payload)}, slot, /*fcall=*/false,
            [command, done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
              if (!reply.ok()) return done(reply.status());
              const redisReply& r = **reply;
              if (r.type == REDIS_REPLY_INTEGER) return done(static_cast<int64_t>(r.integer));
              done(r.type == REDIS_REPLY_ERROR
                       ? ReplyError(command, Text(r))
                       : absl::InternalError(absl::StrCat(command, ": unexpected reply")));
            });
  }

  // Answers a command exactly once: its reply (an error reply included, a MOVED only once
  // the redirections allowed are spent), valid only during the call, or the status of a
  // command that got none.
  using ReplyHandler = absl::AnyInvocable<void(absl::StatusOr<const redisReply*> reply)>;

  // Sends `argv` to the master of `slot` (following MOVED), within publish_timeout. An
  // FCALL (`fcall`) finds the durable channels' library loaded on that master's
  // connection, and is sent again, once, when Redis answers that it is missing.
  void Command(std::string what, std::vector<std::string> argv, int slot, bool fcall,
               ReplyHandler done) {
    auto job = std::make_shared<PublishJob>(strand_);
    job->what = std::move(what);
    job->argv = std::move(argv);
    job->slot = slot;
    job->fcall = fcall;
    job->done = std::move(done);
    // One bound for the whole command, redirections and waits for the topology included.
    job->timer.expires_after(absl::ToChronoNanoseconds(options_.publish_timeout));
    job->timer.async_wait([weak = weak_from_this(), job](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (self == nullptr || ec == boost::asio::error::operation_aborted) return;
      self->OnPublishTimeout(job);
    });
    Dispatch(job);
  }

  absl::Status RejectedError() const {
    return absl::UnavailableError(absl::StrCat("too many publishes waiting for Redis (",
                                               options_.max_publishes_in_flight, ")"));
  }

  void ReleasePublish() { in_flight_.fetch_sub(1, std::memory_order_acq_rel); }

 private:
  // One subscriber connection: to a master for sharded channels (`shard`), or to any node
  // for classic channels and patterns.
  struct Link {
    std::string key;
    RedisUrl::Node node;
    bool shard = false;
    std::shared_ptr<RespConnection> conn;
    bool ready = false;
    // Topics the hub asked for on this connection and has not given up.
    absl::flat_hash_set<hub::Topic> wanted;
    // Of those, the ones with a subscribe sent and not yet answered.
    absl::flat_hash_set<hub::Topic> sent;
    // Of those, the ones Redis confirmed on this connection.
    absl::flat_hash_set<hub::Topic> confirmed;
    // Proves that the connection delivers, once ready; null while probing is off, or
    // while a shard's probe waits for a channel on a slot its master serves.
    std::shared_ptr<DeliveryProbe> probe;
  };

  // A connection dropped for a lost probe: health stays NOT_SERVING until a connection
  // of the same key delivers a probe, or is no longer needed.
  struct FailingLink {
    RedisUrl::Node node;
    bool shard = false;
  };

  // One command on a publish connection (a publish, or a durable channel's FCALL), from
  // Command to its answer.
  struct PublishJob {
    explicit PublishJob(Strand& strand) : timer(strand) {}
    // For the timeout's error: "PUBLISH", "FCALL bridge_publish", ...
    std::string what;
    std::vector<std::string> argv;
    // The hash slot whose master runs it.
    int slot = 0;
    bool fcall = false;
    // Sent again after a reply that the library was missing.
    bool reloaded = false;
    // MOVED redirections followed so far.
    int redirects = 0;
    // Null once answered.
    ReplyHandler done;
    boost::asio::steady_timer timer;
    // The publish connection it was last sent on, for the timeout.
    std::string sent_on;
    const RespConnection* sent_conn = nullptr;
  };
  using Job = std::shared_ptr<PublishJob>;

  struct Publisher {
    std::string key;
    RedisUrl::Node node;
    std::shared_ptr<RespConnection> conn;
    bool ready = false;
    // Publishes given before the connection was ready, sent once it is.
    std::vector<Job> before_ready;
    // FUNCTION LOAD of the durable channels' library was sent on this connection: every
    // FCALL sent after it finds it (one connection, in order).
    bool library_sent = false;
  };

  void Finish(const Job& job, absl::StatusOr<const redisReply*> result) {
    if (job->done == nullptr) return;
    ReplyHandler done = std::move(job->done);
    job->done = nullptr;
    job->timer.cancel();
    done(std::move(result));
  }

  // A publish unanswered in time: DEADLINE_EXCEEDED, and the connection it waits on,
  // stalled, is dropped (answering the publishes behind it UNAVAILABLE) rather than kept
  // queueing.
  void OnPublishTimeout(const Job& job) {
    if (job->done == nullptr) return;
    const absl::Status timed_out =
        absl::DeadlineExceededError(absl::StrCat("Redis did not answer ", job->what, " within ",
                                                 absl::FormatDuration(options_.publish_timeout)));
    auto it = publishers_.find(job->sent_on);
    if (job->sent_conn == nullptr || it == publishers_.end() ||
        it->second->conn.get() != job->sent_conn) {
      return Finish(job, timed_out);
    }
    std::unique_ptr<Publisher> p = std::move(it->second);
    publishers_.erase(it);
    {
      // Counted before the answer, so that whoever it wakes sees the reset.
      absl::MutexLock lock(&stats_mu_);
      ++stats_.publish_resets;
    }
    Finish(job, timed_out);
    BRIDGE_LOG(Warning, "redis cluster: publish connection to %s stalled; reconnecting",
               job->sent_on);
    p->conn->Close();
  }

  // Sends a publish to the master of its channel's slot, or holds it until that master's
  // connection is ready, or until the topology has been asked again.
  void Dispatch(const Job& job) {
    if (job->done == nullptr) return;
    if (stopped_ || epoch_ == 0) {
      return Finish(job, absl::UnavailableError(stopped_ ? "server is shutting down"
                                                         : "no node of the Redis cluster answers"));
    }
    const ClusterShard* shard = topology_.ShardOfSlot(job->slot);
    if (shard == nullptr) {
      // As for a subscribe: waits, within its timeout, for a topology that serves the slot.
      deferred_.push_back(job);
      ScheduleRefresh(NextBackoff());
      return;
    }
    Publisher* publisher = PublisherFor(shard->master);
    if (!publisher->ready) {
      publisher->before_ready.push_back(job);
      return;
    }
    Send(publisher, job);
  }

  void Send(Publisher* publisher, const Job& job) {
    job->sent_on = publisher->key;
    job->sent_conn = publisher->conn.get();
    if (job->fcall && !publisher->library_sent) {
      publisher->library_sent = true;
      publisher->conn->Command(
          DurableLibraryLoadCommand(), [key = publisher->key](const redisReply* reply) {
            if (reply == nullptr || reply->type != REDIS_REPLY_ERROR) return;
            // Its FCALLs fail with Redis' words, which their callers get.
            BRIDGE_LOG(Warning,
                       "redis cluster: cannot load the durable channels' library on %s (FUNCTION "
                       "LOAD: %s)",
                       key, Text(*reply));
          });
    }
    publisher->conn->Command(job->argv, [weak = weak_from_this(), job](const redisReply* reply) {
      if (auto self = weak.lock()) self->OnPublishReply(job, reply);
    });
  }

  RespConnectionOptions ConnectionOptions(const RedisUrl::Node& node) const {
    RespConnectionOptions o;
    o.host = node.host;
    o.port = node.port;
    o.user = url_.user;
    o.password = url_.password;
    o.connect_timeout = options_.connect_timeout;
    o.tcp_keepalive = options_.tcp_keepalive;
    return o;
  }

  void NoteError(const absl::Status& status, bool lost) {
    absl::MutexLock lock(&stats_mu_);
    stats_.last_error = std::string(status.message());
    if (lost) {
      ++stats_.disconnects;
    } else {
      ++stats_.connect_failures;
    }
  }

  // --- Subscriber connections ---

  Link* FindLink(const std::string& key, const RespConnection* conn) {
    auto it = links_.find(key);
    if (it == links_.end() || it->second->conn.get() != conn) return nullptr;
    return it->second.get();
  }

  void Forget(Link* link, const hub::Topic& topic) {
    link->wanted.erase(topic);
    link->sent.erase(topic);
    link->confirmed.erase(topic);
    auto it = where_.find(topic);
    if (it != where_.end() && it->second == link) where_.erase(it);
  }

  // Sends a subscribe for `topic` to the connection that should carry it.
  void Route(const hub::Topic& topic) {
    RedisUrl::Node node;
    const bool shard = !topic.is_pattern() && IsSharded(topic.name);
    if (shard) {
      const ClusterShard* owner = topology_.ShardOfSlot(KeySlot(topic.name));
      if (owner == nullptr) {
        // No live master serves the slot (a shard down without a replica to promote):
        // asked again with backoff, not in a loop.
        unrouted_.push_back(topic);
        ScheduleRefresh(NextBackoff());
        return;
      }
      node = owner->master;
    } else {
      node = classic_node_;
    }
    Link* link = LinkFor(node, shard);
    link->wanted.insert(topic);
    where_[topic] = link;
    if (link->ready) SendSubscribe(link, topic);
  }

  Link* LinkFor(const RedisUrl::Node& node, bool shard) {
    const std::string key = absl::StrCat(shard ? "shard " : "classic ", Address(node));
    auto& slot = links_[key];
    if (slot != nullptr) return slot.get();
    slot = std::make_unique<Link>();
    Link* link = slot.get();
    link->key = key;
    link->node = node;
    link->shard = shard;
    link->conn = std::make_shared<RespConnection>(strand_, ConnectionOptions(node));
    const RespConnection* conn = link->conn.get();
    auto weak = weak_from_this();
    link->conn->Open(
        [weak, key, conn] {
          if (auto self = weak.lock()) self->OnLinkReady(key, conn);
        },
        [weak, key, conn](absl::Status status) {
          if (auto self = weak.lock()) self->OnLinkClosed(key, conn, std::move(status));
        },
        [weak, key, conn](const redisReply& push) {
          if (auto self = weak.lock()) self->OnPush(key, conn, push);
        });
    return link;
  }

  void OnLinkReady(const std::string& key, const RespConnection* conn) {
    Link* link = FindLink(key, conn);
    if (link == nullptr) return;
    link->ready = true;
    backoff_ = 0;
    BRIDGE_LOG(Info, "redis cluster: %s connection ready", key);
    // The probe's subscribe goes first, so that its first round, one interval later,
    // finds it made.
    StartProbe(link);
    if (link->probe == nullptr && failing_.erase(key) > 0) {
      // Nothing can show more than a connection that answers.
      UpdateDelivering();
    }
    std::vector<hub::Topic> to_send(link->wanted.begin(), link->wanted.end());
    for (const auto& topic : to_send) SendSubscribe(link, topic);
  }

  void SendSubscribe(Link* link, const hub::Topic& topic) {
    if (link->sent.contains(topic) || link->confirmed.contains(topic)) return;
    link->sent.insert(topic);
    const char* command =
        link->shard ? "SSUBSCRIBE" : (topic.is_pattern() ? "PSUBSCRIBE" : "SUBSCRIBE");
    link->conn->Command({command, topic.name},
                        [weak = weak_from_this(), key = link->key, conn = link->conn.get(),
                         topic](const redisReply* reply) {
                          auto self = weak.lock();
                          if (self != nullptr && reply != nullptr)
                            self->OnSubscribeReply(key, conn, topic, *reply);
                        });
  }

  void OnSubscribeReply(const std::string& key, const RespConnection* conn, const hub::Topic& topic,
                        const redisReply& reply) {
    Link* link = FindLink(key, conn);
    if (link == nullptr || !link->wanted.contains(topic)) return;
    link->sent.erase(topic);
    if (reply.type == REDIS_REPLY_ERROR) {
      const absl::string_view error = Text(reply);
      int slot = 0;
      RedisUrl::Node owner;
      Forget(link, topic);
      if (ParseRedirect(std::string_view(error.data(), error.size()), "MOVED", &slot, &owner)) {
        // The slot has moved: follow Redis' word for this one at once, and ask for the
        // whole picture.
        topology_.Move(slot, owner);
        Route(topic);
        ScheduleRefresh(absl::ZeroDuration());
        return;
      }
      if (absl::StartsWith(error, "CLUSTERDOWN") || absl::StartsWith(error, "TRYAGAIN") ||
          absl::StartsWith(error, "ASK")) {
        // The slot is between owners: try again once the topology has been asked again.
        unrouted_.push_back(topic);
        ScheduleRefresh(NextBackoff());
        return;
      }
      BRIDGE_LOG(Warning, "redis cluster: %s refused on %s: %s", topic.name, key, error);
      {
        absl::MutexLock lock(&stats_mu_);
        ++stats_.subscribes_refused;
      }
      if (listener_ != nullptr) {
        listener_->OnSubscribeRefused(topic, SubscribeRefusedError(topic, error));
      }
      return;
    }
    link->confirmed.insert(topic);
    if (listener_ != nullptr) listener_->OnSubscribeConfirmed(topic);
  }

  void OnPush(const std::string& key, const RespConnection* conn, const redisReply& push) {
    Link* link = FindLink(key, conn);
    if (link == nullptr || push.type != REDIS_REPLY_ARRAY || push.elements < 3) return;
    const absl::string_view kind = Text(*push.element[0]);
    if ((kind == "message" || kind == "smessage") && push.elements == 3) {
      const absl::string_view name = Text(*push.element[1]);
      const absl::string_view payload = Text(*push.element[2]);
      if (IsProbeChannel(View(name))) {
        // Bridge's own traffic, which no client sees; this connection's probe's, or a
        // leftover of one retired.
        if (link->probe != nullptr && View(name) == link->probe->channel() &&
            link->probe->OnMessage(View(payload))) {
          OnProbeBack(link);
        }
        return;
      }
      const hub::Topic topic = hub::Topic::Channel(std::string(name));
      if (!link->confirmed.contains(topic) || listener_ == nullptr) return;
      listener_->OnMessage(topic, topic.name, std::string_view(payload.data(), payload.size()));
      return;
    }
    if (kind == "pmessage" && push.elements == 4) {
      const hub::Topic topic = hub::Topic::Pattern(std::string(Text(*push.element[1])));
      if (!link->confirmed.contains(topic) || listener_ == nullptr) return;
      const absl::string_view channel = Text(*push.element[2]);
      // A client's pattern that matches a probe channel (`*`), this process' or another's.
      if (IsProbeChannel(View(channel))) return;
      const absl::string_view payload = Text(*push.element[3]);
      listener_->OnMessage(topic, std::string_view(channel.data(), channel.size()),
                           std::string_view(payload.data(), payload.size()));
      return;
    }
    if (kind == "sunsubscribe" && link->shard) {
      if (link->probe != nullptr && View(Text(*push.element[1])) == link->probe->channel()) {
        // The probe's slot left this master: it starts over on a slot the master still
        // serves once the topology has been asked again.
        BRIDGE_LOG(Info, "redis cluster: the delivery probe's slot left %s; choosing another", key);
        RetireProbe(link);
        ScheduleRefresh(absl::ZeroDuration());
        return;
      }
      // Redis dropped the channel itself: its slot left this node.
      const hub::Topic topic = hub::Topic::Channel(std::string(Text(*push.element[1])));
      if (!link->confirmed.contains(topic)) return;
      Forget(link, topic);
      BRIDGE_LOG(Info, "redis cluster: %s left %s (slot %d moved)", topic.name, key,
                 KeySlot(topic.name));
      ScheduleRefresh(absl::ZeroDuration());
      if (listener_ != nullptr) listener_->OnTopicsLost({topic});
    }
  }

  void OnLinkClosed(const std::string& key, const RespConnection* conn, absl::Status status) {
    Link* link = FindLink(key, conn);
    if (link == nullptr) return;
    const bool was_ready = link->ready;
    std::vector<hub::Topic> lost(link->confirmed.begin(), link->confirmed.end());
    for (const auto& topic : link->wanted) {
      if (!link->confirmed.contains(topic)) unrouted_.push_back(topic);
      where_.erase(topic);
    }
    RetireProbe(link);
    links_.erase(key);
    NoteError(status, was_ready);
    BRIDGE_LOG(Warning, "redis cluster: %s connection %s: %s; %d subscriptions lost", key,
               was_ready ? "lost" : "failed", status.ToString(), lost.size());
    ScheduleRefresh(NextBackoff());
    if (!lost.empty() && listener_ != nullptr) listener_->OnTopicsLost(lost);
  }

  // --- Delivery probes ---

  const ClusterShard* ShardOf(const RedisUrl::Node& master) const {
    for (const auto& shard : topology_.shards()) {
      if (shard.master == master) return &shard;
    }
    return nullptr;
  }

  // Gives a ready connection its probe: for a shard, on a channel whose hash tag lands on
  // a slot its master serves, so that SPUBLISH to that master reaches it.
  void StartProbe(Link* link) {
    if (probes_off_ || options_.probe_interval <= absl::ZeroDuration() || !link->ready ||
        link->probe != nullptr) {
      return;
    }
    std::string tag;
    if (link->shard) {
      const ClusterShard* shard = ShardOf(link->node);
      // A master that serves no slot (any more) loses its channels to others: Refreshed
      // closes it once it carries none.
      if (shard == nullptr) return;
      tag = HashTagInRanges(shard->slots);
      if (tag.empty()) return;
    }
    auto weak = weak_from_this();
    auto probe = std::make_shared<DeliveryProbe>(
        strand_, NewProbeChannel(tag),
        DeliveryProbeOptions{.interval = options_.probe_interval,
                             .timeout = options_.probe_timeout},
        // A shard's probe goes to its master alone (no MOVED followed: a slot that moved
        // away loses the probe); the classic connection's to its own node, where a PUBLISH
        // is delivered to that node's subscribers at once.
        [weak, node = link->node, sharded = link->shard](std::string channel, std::string payload,
                                                         DeliveryProbe::DoneCallback done) {
          auto self = weak.lock();
          if (self == nullptr) return done(absl::UnavailableError("the upstream stopped"));
          self->ProbePublish(node, sharded, std::move(channel), std::move(payload),
                             std::move(done));
        },
        [weak, key = link->key, conn = link->conn.get()](absl::Status why) {
          if (auto self = weak.lock()) self->DropLink(key, conn, std::move(why));
        });
    link->probe = probe;
    {
      absl::MutexLock lock(&stats_mu_);
      probes_.push_back(probe);
    }
    link->conn->Command({link->shard ? "SSUBSCRIBE" : "SUBSCRIBE", probe->channel()},
                        [weak, key = link->key, conn = link->conn.get(),
                         probe = probe.get()](const redisReply* reply) {
                          auto self = weak.lock();
                          if (self != nullptr && reply != nullptr) {
                            self->OnProbeSubscribeReply(key, conn, probe, *reply);
                          }
                        });
    probe->Start();
  }

  void OnProbeSubscribeReply(const std::string& key, const RespConnection* conn,
                             const DeliveryProbe* probe, const redisReply& reply) {
    Link* link = FindLink(key, conn);
    if (link == nullptr || link->probe.get() != probe || reply.type != REDIS_REPLY_ERROR) return;
    const absl::string_view error = Text(reply);
    if (IsTransientError(error)) {
      // The slot moved after the topology was asked: another channel, once asked again.
      RetireProbe(link);
      ScheduleRefresh(NextBackoff());
      return;
    }
    ProbesRefused(absl::StrCat("Redis refused to subscribe ", probe->channel(), " (", error, ")"));
  }

  void ProbePublish(const RedisUrl::Node& node, bool sharded, std::string channel,
                    std::string payload, DeliveryProbe::DoneCallback done) {
    if (stopped_) return done(absl::UnavailableError("server is shutting down"));
    // The publish connection of that node, shared with the hub's publishes; a probe has
    // no timeout of its own there (its deadline decides) and is not counted against the
    // publish bounds.
    Publisher* publisher = PublisherFor(node);
    if (!publisher->ready) {
      // The probe sends it again shortly, within its timeout.
      return done(absl::UnavailableError(
          absl::StrCat("the publish connection to ", publisher->key, " is not ready")));
    }
    publisher->conn->Command(
        {sharded ? "SPUBLISH" : "PUBLISH", std::move(channel), std::move(payload)},
        [weak = weak_from_this(), done = std::move(done)](const redisReply* reply) mutable {
          if (reply == nullptr) {
            return done(absl::UnavailableError("the publish connection closed"));
          }
          if (reply->type != REDIS_REPLY_ERROR) return done(absl::OkStatus());
          const absl::string_view error = Text(*reply);
          if (!IsTransientError(error)) {
            if (auto self = weak.lock()) {
              self->ProbesRefused(absl::StrCat("Redis refused to publish a probe (", error, ")"));
            }
          }
          // A redirection (the slot left the master) is sent again until the deadline.
          done(absl::UnavailableError(error));
        });
  }

  // A probe lost: the connection no longer delivers. Dropped as lost (its topics get
  // their gap and are subscribed again), and health is NOT_SERVING until a connection of
  // the same key delivers again.
  void DropLink(const std::string& key, const RespConnection* conn, absl::Status why) {
    Link* link = FindLink(key, conn);
    if (stopped_ || link == nullptr) return;
    const RedisUrl::Node node = link->node;
    failing_[key] = FailingLink{node, link->shard};
    link->conn->Close();
    OnLinkClosed(key, conn, std::move(why));
    // The probe went over that node's publish connection, which may be the one that
    // stalled: it is made anew too, else every later probe would be lost on it and the
    // subscriber connection dropped again and again. Publishes waiting on it are answered
    // UNAVAILABLE.
    auto publisher = publishers_.find(Address(node));
    if (publisher != publishers_.end() && publisher->second->ready) {
      std::unique_ptr<Publisher> p = std::move(publisher->second);
      publishers_.erase(publisher);
      p->conn->Close();
    }
    // Reported after the loss is counted, so that whoever the health change wakes sees it.
    UpdateDelivering();
  }

  void OnProbeBack(Link* link) {
    if (failing_.erase(link->key) == 0) return;
    BRIDGE_LOG(Info, "redis cluster: %s connection delivers again", link->key);
    UpdateDelivering();
  }

  // Redis refuses the probe (an ACL without the probe channels): no later probe can
  // succeed, on any connection. Logged once.
  void ProbesRefused(const std::string& why) {
    if (probes_off_) return;
    probes_off_ = true;
    BRIDGE_LOG(Error,
               "redis cluster: delivery probes turned off: %s; allow the channels %s* to "
               "Bridge's Redis user, or run with --probe_interval=0",
               why, kProbeChannelPrefix);
    for (auto& [key, link] : links_) RetireProbe(link.get());
    failing_.clear();
    UpdateDelivering();
  }

  // Stops a connection's probe and keeps its counts.
  void RetireProbe(Link* link) {
    if (link->probe == nullptr) return;
    link->probe->Stop();
    const DeliveryProbeStats retired = link->probe->Stats();
    {
      absl::MutexLock lock(&stats_mu_);
      stats_.probes_sent += retired.sent;
      stats_.probes_lost += retired.lost;
      probes_.erase(std::remove(probes_.begin(), probes_.end(), link->probe), probes_.end());
    }
    link->probe.reset();
  }

  void UpdateDelivering() {
    const bool delivering = failing_.empty();
    if (delivering == reported_delivering_) return;
    reported_delivering_ = delivering;
    if (listener_ != nullptr) listener_->OnUpstreamDelivering(delivering);
  }

  // After the topology was asked: connections dropped for a lost probe are made again
  // (with topics or without) until they deliver, unless their node no longer serves
  // slots (failed over, demoted: their topics have moved) or, for classic pub/sub, is no
  // longer the node it goes to. Shard probes whose slot left their master start over.
  void ReviewProbes() {
    for (auto it = failing_.begin(); it != failing_.end();) {
      const FailingLink& f = it->second;
      const bool needed = f.shard ? ShardOf(f.node) != nullptr : f.node == classic_node_;
      if (!needed) {
        BRIDGE_LOG(Info, "redis cluster: %s no longer needed; not waiting for it", it->first);
        failing_.erase(it++);
        continue;
      }
      if (!links_.contains(it->first)) LinkFor(f.node, f.shard);
      ++it;
    }
    UpdateDelivering();
    std::vector<std::string> unneeded;
    for (auto& [key, link] : links_) {
      if (!link->shard || !link->ready) continue;
      if (ShardOf(link->node) == nullptr) {
        // A master no more: SPUBLISH there would only be redirected.
        if (link->wanted.empty()) unneeded.push_back(key);
        continue;
      }
      if (link->probe != nullptr) {
        const ClusterShard* owner = topology_.ShardOfSlot(KeySlot(link->probe->channel()));
        if (owner != nullptr && owner->master == link->node) continue;
        RetireProbe(link.get());
      }
      StartProbe(link.get());
    }
    for (const auto& key : unneeded) {
      Link* link = links_[key].get();
      BRIDGE_LOG(Info, "redis cluster: closing %s, which serves no slot and carries nothing", key);
      RetireProbe(link);
      link->conn->Close();
      links_.erase(key);
    }
  }

  // --- Publishers ---

  Publisher* PublisherFor(const RedisUrl::Node& node) {
    const std::string key = Address(node);
    auto& slot = publishers_[key];
    if (slot != nullptr) return slot.get();
    slot = std::make_unique<Publisher>();
    Publisher* p = slot.get();
    p->key = key;
    p->node = node;
    p->conn = std::make_shared<RespConnection>(strand_, ConnectionOptions(node));
    const RespConnection* conn = p->conn.get();
    auto weak = weak_from_this();
    p->conn->Open(
        [weak, key, conn] {
          auto self = weak.lock();
          if (self == nullptr) return;
          auto it = self->publishers_.find(key);
          if (it == self->publishers_.end() || it->second->conn.get() != conn) return;
          Publisher* p = it->second.get();
          p->ready = true;
          std::vector<Job> queued = std::move(p->before_ready);
          p->before_ready.clear();
          for (const Job& job : queued) self->Send(p, job);
        },
        [weak, key, conn](absl::Status status) {
          auto self = weak.lock();
          if (self == nullptr) return;
          auto it = self->publishers_.find(key);
          if (it == self->publishers_.end() || it->second->conn.get() != conn) return;
          std::unique_ptr<Publisher> p = std::move(it->second);
          self->publishers_.erase(it);
          self->NoteError(status, p->ready);
          BRIDGE_LOG(Warning, "redis cluster: publish connection to %s: %s", key,
                     status.ToString());
          // Publishes never sent are routed again once the topology has been asked
          // again: a master that does not answer may just have been replaced.
          for (Job& job : p->before_ready) self->deferred_.push_back(std::move(job));
          self->ScheduleRefresh(self->NextBackoff());
        },
        [](const redisReply&) {});
    return p;
  }

  void OnPublishReply(const Job& job, const redisReply* reply) {
    if (job->done == nullptr) return;
    if (reply == nullptr) {
      // Sent, so perhaps delivered: not sent again.
      return Finish(job,
                    absl::UnavailableError("connection to the Redis cluster lost during publish"));
    }
    if (reply->type != REDIS_REPLY_ERROR) return Finish(job, reply);
    const absl::string_view error = Text(*reply);
    int slot = 0;
    RedisUrl::Node owner;
    if (ParseRedirect(std::string_view(error.data(), error.size()), "MOVED", &slot, &owner)) {
      topology_.Move(slot, owner);
      ScheduleRefresh(absl::ZeroDuration());
      if (job->redirects < 3) {
        ++job->redirects;
        return Dispatch(job);
      }
    } else if (job->fcall && !job->reloaded &&
               IsFunctionMissing(std::string_view(error.data(), error.size()))) {
      // The library went from that master (FUNCTION FLUSH, a restart behind a proxy):
      // loaded again before the call is sent once more.
      job->reloaded = true;
      auto it = publishers_.find(job->sent_on);
      if (it != publishers_.end() && it->second->conn.get() == job->sent_conn) {
        it->second->library_sent = false;
      }
      return Dispatch(job);
    }
    Finish(job, reply);
  }

  // --- Topology ---

  absl::Duration NextBackoff() {
    const absl::Duration ceiling =
        std::min(options_.backoff_max, options_.backoff_initial * (1 << std::min(backoff_, 16)));
    ++backoff_;
    // Full jitter over the upper half, so that a retry never comes at once.
    const int64_t high = absl::ToInt64Nanoseconds(ceiling);
    return absl::Nanoseconds(absl::Uniform(absl::IntervalClosedClosed, rng_, high / 2, high));
  }

  void ScheduleRefresh(absl::Duration delay) {
    if (stopped_) return;
    if (refresh_running_) {
      refresh_again_ = true;
      return;
    }
    if (refresh_scheduled_) return;
    refresh_scheduled_ = true;
    refresh_timer_.expires_after(absl::ToChronoNanoseconds(delay));
    refresh_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (self == nullptr || ec == boost::asio::error::operation_aborted || self->stopped_) {
        return;
      }
      self->refresh_scheduled_ = false;
      self->DoRefresh();
    });
  }

  void DoRefresh() {
    if (stopped_ || refresh_running_) return;
    refresh_running_ = true;
    refresh_again_ = false;
    // The masters known, then the seeds: any node answers for the whole cluster.
    candidates_.clear();
    auto add = [&](const RedisUrl::Node& node) {
      if (std::find(candidates_.begin(), candidates_.end(), node) == candidates_.end()) {
        candidates_.push_back(node);
      }
    };
    for (const auto& shard : topology_.shards()) add(shard.master);
    for (const auto& seed : url_.nodes) add(seed);
    TryCandidate(0, absl::OkStatus());
  }

  void TryCandidate(size_t index, absl::Status last) {
    if (stopped_) return;
    if (refresh_conn_ != nullptr) refresh_conn_->Close();
    refresh_conn_.reset();
    if (index >= candidates_.size()) return RefreshFailed(std::move(last));
    const RedisUrl::Node node = candidates_[index];
    refresh_conn_ = std::make_shared<RespConnection>(strand_, ConnectionOptions(node));
    const RespConnection* conn = refresh_conn_.get();
    auto weak = weak_from_this();
    refresh_conn_->Open(
        [weak, conn, node, index] {
          auto self = weak.lock();
          if (self == nullptr || self->refresh_conn_.get() != conn) return;
          self->refresh_conn_->Command({"CLUSTER", "SHARDS"},
                                       [weak, conn, node, index](const redisReply* reply) {
                                         auto self = weak.lock();
                                         if (self == nullptr || self->refresh_conn_.get() != conn)
                                           return;
                                         self->OnTopologyReply(node, index, reply, /*shards=*/true);
                                       });
        },
        [weak, conn, index](absl::Status status) {
          auto self = weak.lock();
          if (self == nullptr || self->refresh_conn_.get() != conn) return;
          self->TryCandidate(index + 1, std::move(status));
        },
        [](const redisReply&) {});
  }

  void OnTopologyReply(const RedisUrl::Node& node, size_t index, const redisReply* reply,
                       bool shards) {
    if (reply == nullptr) return;  // The connection's end moves on to the next node.
    if (reply->type == REDIS_REPLY_ERROR && shards) {
      // A cluster without CLUSTER SHARDS (Redis < 7).
      const RespConnection* conn = refresh_conn_.get();
      refresh_conn_->Command({"CLUSTER", "SLOTS"},
                             [weak = weak_from_this(), conn, node, index](const redisReply* r) {
                               auto self = weak.lock();
                               if (self == nullptr || self->refresh_conn_.get() != conn) return;
                               self->OnTopologyReply(node, index, r, /*shards=*/false);
                             });
      return;
    }
    absl::StatusOr<ClusterTopology> topology =
        reply->type == REDIS_REPLY_ERROR
            ? absl::StatusOr<ClusterTopology>(absl::FailedPreconditionError(Text(*reply)))
            : (shards ? ClusterTopology::FromShards(*reply, node)
                      : ClusterTopology::FromSlots(*reply, node));
    if (!topology.ok() || topology->slots_served() == 0) {
      return TryCandidate(index + 1, topology.ok() ? absl::UnavailableError(absl::StrCat(
                                                         Address(node), " serves no slot"))
                                                   : topology.status());
    }
    refresh_conn_->Close();
    refresh_conn_.reset();
    Refreshed(*std::move(topology), node);
  }

  void Refreshed(ClusterTopology topology, const RedisUrl::Node& answered) {
    refresh_running_ = false;
    const bool first = topology_.shards().empty();
    topology_ = std::move(topology);
    // Classic pub/sub stays on its node while that node's connection lives; new topics
    // go to a node known to answer.
    classic_node_ = answered;
    if (first || epoch_ == 0) {
      std::vector<std::string> masters;
      for (const auto& shard : topology_.shards()) masters.push_back(Address(shard.master));
      BRIDGE_LOG(Info, "redis cluster: %d masters (%s), %d of 16384 slots served",
                 topology_.shards().size(), absl::StrJoin(masters, ", "), topology_.slots_served());
    }
    if (epoch_ == 0) {
      epoch_ = ++last_epoch_;
      connected_.store(true, std::memory_order_release);
      if (listener_ != nullptr) listener_->OnUpstreamConnected(epoch_);
    }
    if (refresh_again_) {
      refresh_again_ = false;
      ScheduleRefresh(absl::ZeroDuration());
      return;
    }
    std::vector<hub::Topic> pending = std::move(unrouted_);
    unrouted_.clear();
    for (const auto& topic : pending) {
      // Routed once: a topic already riding a connection stays there.
      if (!where_.contains(topic)) Route(topic);
    }
    std::vector<Job> deferred = std::move(deferred_);
    deferred_.clear();
    for (const Job& job : deferred) Dispatch(job);
    ReviewProbes();
  }

  void RefreshFailed(absl::Status last) {
    refresh_running_ = false;
    NoteError(last, false);
    BRIDGE_LOG(Warning, "redis cluster: no node answered (%s)", last.ToString());
    if (epoch_ != 0) {
      // Nothing of the cluster answers: every subscription is as good as gone.
      epoch_ = 0;
      connected_.store(false, std::memory_order_release);
      CloseAll();
      if (listener_ != nullptr) listener_->OnUpstreamDisconnected();
      // After the disconnect, so that the hub is never healthy in between: nothing is
      // awaited of connections that are all gone.
      UpdateDelivering();
    }
    std::vector<Job> deferred = std::move(deferred_);
    deferred_.clear();
    for (const Job& job : deferred) {
      Finish(job, absl::UnavailableError(
                      absl::StrCat("no node of the Redis cluster answers (", last.message(), ")")));
    }
    ScheduleRefresh(NextBackoff());
  }

  void CloseAll() {
    auto links = std::move(links_);
    links_.clear();
    where_.clear();
    unrouted_.clear();
    for (auto& [key, link] : links) {
      RetireProbe(link.get());
      link->conn->Close();
    }
    failing_.clear();
    auto publishers = std::move(publishers_);
    publishers_.clear();
    for (auto& [key, p] : publishers) {
      p->conn->Close();
      for (const Job& job : p->before_ready) {
        Finish(job, absl::UnavailableError("the Redis cluster connection closed"));
      }
    }
    std::vector<Job> deferred = std::move(deferred_);
    deferred_.clear();
    for (const Job& job : deferred) {
      Finish(job, absl::UnavailableError("the Redis cluster connection closed"));
    }
  }

  Strand strand_;
  const RedisUrl url_;
  const RedisUpstreamOptions options_;
  const ClusterInfo info_;
  boost::asio::steady_timer refresh_timer_;

  // Set before Start; cleared by Stop, on the strand.
  hub::UpstreamListener* listener_ = nullptr;

  // Strand only.
  bool stopped_ = false;
  // The hub's epoch: nonzero while some node of the cluster answers.
  uint64_t epoch_ = 0;
  uint64_t last_epoch_ = 0;
  ClusterTopology topology_;
  RedisUrl::Node classic_node_;
  absl::flat_hash_map<std::string, std::unique_ptr<Link>> links_;
  // The connection each wanted topic rides on.
  absl::flat_hash_map<hub::Topic, Link*> where_;
  // Subscribes waiting for the topology to be asked again.
  std::vector<hub::Topic> unrouted_;
  absl::flat_hash_map<std::string, std::unique_ptr<Publisher>> publishers_;
  // Publishes waiting for the topology to be asked again.
  std::vector<Job> deferred_;
  bool refresh_running_ = false;
  bool refresh_scheduled_ = false;
  bool refresh_again_ = false;
  std::vector<RedisUrl::Node> candidates_;
  std::shared_ptr<RespConnection> refresh_conn_;
  // Set once Redis refused a probe: no connection gets one after that.
  bool probes_off_ = false;
  // Connections (by link key) dropped for a lost probe and not yet delivering again.
  absl::flat_hash_map<std::string, FailingLink> failing_;
  // What the listener last heard through OnUpstreamDelivering.
  bool reported_delivering_ = true;
  int backoff_ = 0;
  absl::BitGen rng_;

  // Any thread.
  std::atomic<bool> connected_{false};
  std::atomic<int> in_flight_{0};
  std::atomic<uint64_t> rejected_{0};
  mutable absl::Mutex stats_mu_;
  // Probes sent and lost by retired probes (the connections' that are gone).
  RedisUpstreamStats stats_ ABSL_GUARDED_BY(stats_mu_);
  // The probes of the connections that exist, for Stats.
  std::vector<std::shared_ptr<DeliveryProbe>> probes_ ABSL_GUARDED_BY(stats_mu_);
};

absl::StatusOr<std::unique_ptr<ClusterUpstream>> ClusterUpstream::Create(
    const RedisUpstreamOptions& options, boost::asio::io_context& io) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse(options.url);
  if (!url.ok()) return url.status();
  if (!url->is_cluster()) {
    return absl::InvalidArgumentError("a cluster upstream needs a redis+cluster:// URL");
  }
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.publish_timeout <= absl::ZeroDuration() ||
      options.backoff_initial <= absl::ZeroDuration() ||
      options.backoff_max < options.backoff_initial || options.max_publishes_in_flight <= 0) {
    return absl::InvalidArgumentError(
        "redis options: timeouts, backoff and publish limits must be positive, backoff_max >= "
        "backoff_initial");
  }
  if (options.probe_interval < absl::ZeroDuration() ||
      (options.probe_interval > absl::ZeroDuration() &&
       options.probe_timeout <= absl::ZeroDuration())) {
    return absl::InvalidArgumentError(
        "redis options: probe_interval must not be negative, and probe_timeout must be "
        "positive");
  }
  for (const auto& glob : options.sharded_channels) {
    if (glob.empty()) return absl::InvalidArgumentError("sharded channels: empty glob");
    if (absl::Status st = auth::ValidateGlob(glob); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("sharded channels: ", st.message()));
    }
  }
  std::vector<std::string> failures;
  for (const RedisUrl::Node& seed : url->nodes) {
    absl::StatusOr<ClusterInfo> info = AskSeed(*url, seed, options.connect_timeout);
    if (!info.ok()) {
      if (info.status().code() != absl::StatusCode::kUnavailable) return info.status();
      failures.push_back(std::string(info.status().message()));
      continue;
    }
    if (!options.sharded_channels.empty() && !info->sharded_pubsub) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--sharded_channels needs sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7 or later), "
          "and the cluster at ",
          Address(seed), " does not know SPUBLISH"));
    }
    return std::unique_ptr<ClusterUpstream>(
        new ClusterUpstream(options, *std::move(url), *std::move(info), io));
  }
  return absl::UnavailableError(
      absl::StrCat("no seed node of the Redis cluster answered: ", absl::StrJoin(failures, "; ")));
}

ClusterUpstream::ClusterUpstream(const RedisUpstreamOptions& options, RedisUrl url,
                                 ClusterInfo info, boost::asio::io_context& io)
    : options_(options),
      redacted_url_(url.Redacted()),
      info_(info),
      io_(io),
      core_(std::make_shared<ClusterCore>(boost::asio::make_strand(io), std::move(url), options,
                                          info)) {}

ClusterUpstream::~ClusterUpstream() { Stop(); }

void ClusterUpstream::Start() {
  boost::asio::post(core_->strand(), [core = core_] { core->Start(); });
}

void ClusterUpstream::Stop() {
  if (core_->strand().running_in_this_thread()) return core_->Stop();
  auto done = std::make_shared<absl::Notification>();
  boost::asio::post(core_->strand(), [core = core_, done] {
    core->Stop();
    done->Notify();
  });
  if (done->WaitForNotificationWithTimeout(options_.stop_timeout)) return;
  if (io_.stopped()) {
    // Nobody runs the strand any more, so no handler can race us.
    core_->Stop();
    return;
  }
  BRIDGE_LOG(Error, "redis cluster: Stop did not finish within %s; the strand is blocked",
             absl::FormatDuration(options_.stop_timeout));
}

void ClusterUpstream::SetListener(hub::UpstreamListener* listener) { core_->SetListener(listener); }

void ClusterUpstream::Subscribe(const hub::Topic& topic, uint64_t epoch) {
  // Always queued, never run inside the caller: the hub calls in again from listener
  // callbacks (OnTopicsLost renews at once).
  boost::asio::post(core_->strand(),
                    [core = core_, topic, epoch] { core->Subscribe(topic, epoch); });
}

void ClusterUpstream::Unsubscribe(const hub::Topic& topic, uint64_t epoch) {
  boost::asio::post(core_->strand(),
                    [core = core_, topic, epoch] { core->Unsubscribe(topic, epoch); });
}

void ClusterUpstream::Publish(std::string channel, std::string payload, PublishCallback done) {
  if (!core_->ReservePublish()) return done(core_->RejectedError());
  boost::asio::post(
      core_->strand(), [core = core_, channel = std::move(channel), payload = std::move(payload),
                        done = std::move(done)]() mutable {
        core->Publish(std::move(channel), std::move(payload),
                      [core, done = std::move(done)](absl::StatusOr<int64_t> result) mutable {
                        core->ReleasePublish();
                        done(std::move(result));
                      });
      });
}

void ClusterUpstream::PublishDurable(hub::DurablePublish request, DurablePublishCallback done) {
  const bool sharded = IsSharded(request.channel);
  absl::StatusOr<std::vector<std::string>> argv =
      DurablePublishCommand(request, sharded, options_.publish_key_window);
  if (!argv.ok()) return done(argv.status());
  if (!core_->ReservePublish()) return done(core_->RejectedError());
  boost::asio::post(core_->strand(), [core = core_, slot = KeySlot(request.channel),
                                      argv = *std::move(argv), done = std::move(done)]() mutable {
    core->Command(absl::StrCat("FCALL ", std::string(kDurablePublishFunction)), std::move(argv),
                  slot, /*fcall=*/true,
                  [core, done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
                    core->ReleasePublish();
                    if (!reply.ok()) return done(reply.status());
                    done(ParseDurablePublishReply(**reply));
                  });
  });
}

void ClusterUpstream::ReadHistory(hub::HistoryQuery query, HistoryCallback done) {
  // Every answer is posted to the strand of the listener calls, as a handler of its own:
  // never inside the caller (which may be a listener call) nor inside another handler's
  // work, so that the hub may merge the page with the messages delivered around it.
  auto answer = [core = core_,
                 done = std::move(done)](absl::StatusOr<hub::HistoryPage> page) mutable {
    boost::asio::post(core->strand(), [done = std::move(done), page = std::move(page)]() mutable {
      done(std::move(page));
    });
  };
  absl::StatusOr<std::vector<std::string>> argv = HistoryCommand(query);
  if (!argv.ok()) return answer(argv.status());
  if (!core_->ReservePublish()) return answer(core_->RejectedError());
  boost::asio::post(
      core_->strand(), [core = core_, slot = KeySlot(query.channel), argv = *std::move(argv),
                        answer = std::move(answer)]() mutable {
        core->Command(
            absl::StrCat("FCALL_RO ", std::string(kDurableHistoryFunction)), std::move(argv), slot,
            /*fcall=*/true,
            [core, answer = std::move(answer)](absl::StatusOr<const redisReply*> reply) mutable {
              core->ReleasePublish();
              if (!reply.ok()) return answer(reply.status());
              answer(ParseHistoryReply(**reply));
            });
      });
}

bool ClusterUpstream::IsSharded(std::string_view channel) const {
  return core_->IsSharded(absl::string_view(channel.data(), channel.size()));
}

bool ClusterUpstream::connected() const { return core_->connected(); }

RedisUpstreamStats ClusterUpstream::Stats() const { return core_->Stats(); }

}  // namespace bridge::redis
