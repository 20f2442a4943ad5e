// The bridge binary: parses flags (each also read from a BRIDGE_* environment variable),
// builds an App, runs it until SIGTERM or SIGINT, then drains and exits.
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/app/app.h"
#include "bridge/app/history_rules.h"
#include "bridge/common/fd_limit.h"
#include "bridge/common/log.h"

namespace {

// A flag's default: the environment variable when set, else `fallback`. The command
// line, parsed later, wins over both. A variable that does not parse is fatal.
template <typename T>
T EnvOr(const char* name, T fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr) return fallback;
  T value;
  std::string error;
  if (!absl::ParseFlag(absl::string_view(text), &value, &error)) {
    std::fprintf(stderr, "bridge: environment variable %s=%s: %s\n", name, text, error.c_str());
    std::exit(2);
  }
  return value;
}

}  // namespace

ABSL_FLAG(std::string, redis, EnvOr<std::string>("BRIDGE_REDIS", "redis://127.0.0.1:6379"),
          "Redis to bridge: redis://[user:password@]host:port[/db], the path of a Unix "
          "socket, or redis+sentinel://[user:password@]s1:26379,s2:26379/master[/db]"
          "[?sentinel_password=p] for the master that Redis Sentinel names, or a Redis Cluster "
          "by some of its nodes: redis+cluster://[user:password@]host:port,host:port (env "
          "BRIDGE_REDIS)");
ABSL_FLAG(absl::Duration, sentinel_refresh_interval,
          EnvOr<absl::Duration>("BRIDGE_SENTINEL_REFRESH_INTERVAL", absl::Seconds(2)),
          "With a redis+sentinel:// URL: how often the sentinels are asked where the master "
          "is, besides following their +switch-master events; a missed event keeps Bridge on "
          "a demoted master at most this long (env BRIDGE_SENTINEL_REFRESH_INTERVAL)");
ABSL_FLAG(absl::Duration, publish_key_window,
          EnvOr<absl::Duration>("BRIDGE_PUBLISH_KEY_WINDOW", absl::Minutes(10)),
          "How long Redis remembers a publish's idempotency_key: a publish with the key of "
          "one made on the same channel within it is not sent again (env "
          "BRIDGE_PUBLISH_KEY_WINDOW)");
ABSL_FLAG(absl::Duration, probe_interval,
          EnvOr<absl::Duration>("BRIDGE_PROBE_INTERVAL", absl::Seconds(1)),
          "How often Bridge publishes a delivery probe on a private channel (__bridge_probe__:"
          "<random id>) that its subscriber connection subscribes, to prove that Redis still "
          "delivers; 0 for no probe (env BRIDGE_PROBE_INTERVAL)");
ABSL_FLAG(absl::Duration, probe_timeout,
          EnvOr<absl::Duration>("BRIDGE_PROBE_TIMEOUT", absl::Seconds(3)),
          "A delivery probe not back within this is lost: health says NOT_SERVING, and the "
          "subscriber connection is dropped and reconnected (env BRIDGE_PROBE_TIMEOUT)");
ABSL_FLAG(std::vector<std::string>, sharded_channels,
          EnvOr<std::vector<std::string>>("BRIDGE_SHARDED_CHANNELS", {}),
          "With a redis+cluster:// --redis: comma-separated globs (PSUBSCRIBE syntax, e.g. "
          "'orders.*,prices.*') of the channels carried by sharded pub/sub (Redis 7): "
          "SSUBSCRIBE on the master of the channel's slot, one connection per master. "
          "Publishers must SPUBLISH these channels (Bridge's own Publish does); a PUBLISH does "
          "not reach their subscribers. Other channels and all patterns use classic pub/sub. "
          "Bridge refuses to start if the cluster lacks SPUBLISH (env BRIDGE_SHARDED_CHANNELS)");
ABSL_FLAG(std::string, history, EnvOr<std::string>("BRIDGE_HISTORY", ""),
          "Durable channels: comma-separated glob=max_len/ttl rules (e.g. "
          "'orders.*=1000/24h,chat.*=100/7d'). A matching channel keeps about its last max_len "
          "messages in Redis (a stream, dropped after ttl without a publish); its messages "
          "carry an offset and epoch, subscribers may resume from an offset, and Bridge "
          "recovers what its own Redis outages lost. Empty: no durable channel (env "
          "BRIDGE_HISTORY)");
ABSL_FLAG(std::string, grpc_addr, EnvOr<std::string>("BRIDGE_GRPC_ADDR", "0.0.0.0:50051"),
          "gRPC listen address, host:port (env BRIDGE_GRPC_ADDR)");
ABSL_FLAG(std::string, access_file, EnvOr<std::string>("BRIDGE_ACCESS_FILE", ""),
          "JSON file of client tokens and the channels each may subscribe to and publish to "
          "(README, Access control); re-read on SIGHUP. Empty: every client may do everything "
          "(env BRIDGE_ACCESS_FILE)");
ABSL_FLAG(size_t, max_queued_messages, EnvOr<size_t>("BRIDGE_MAX_QUEUED_MESSAGES", 4096),
          "Most messages queued for one subscriber (env BRIDGE_MAX_QUEUED_MESSAGES)");
ABSL_FLAG(size_t, max_queued_bytes, EnvOr<size_t>("BRIDGE_MAX_QUEUED_BYTES", 8 << 20),
          "Most payload bytes queued for one subscriber (env BRIDGE_MAX_QUEUED_BYTES)");
ABSL_FLAG(std::string, slow_consumer, EnvOr<std::string>("BRIDGE_SLOW_CONSUMER", "drop"),
          "When a subscriber's queue is full: 'drop' the oldest messages and send a gap, or "
          "'disconnect' it (env BRIDGE_SLOW_CONSUMER)");
ABSL_FLAG(size_t, max_subscriptions, EnvOr<size_t>("BRIDGE_MAX_SUBSCRIPTIONS", 1024),
          "Most channels plus patterns one gRPC Subscribe may name (env "
          "BRIDGE_MAX_SUBSCRIPTIONS)");
ABSL_FLAG(size_t, max_topics, EnvOr<size_t>("BRIDGE_MAX_TOPICS", 100000),
          "Most channels plus patterns the server holds in Redis, over all clients; a "
          "subscribe that would add one past it is refused (gRPC RESOURCE_EXHAUSTED, "
          "WebSocket too_many_topics) (env BRIDGE_MAX_TOPICS)");
ABSL_FLAG(bool, grpc_reflection, EnvOr<bool>("BRIDGE_GRPC_REFLECTION", true),
          "Serve gRPC server reflection (grpcurl list); it needs no token, so turn it off "
          "to keep the API's description from clients (env BRIDGE_GRPC_REFLECTION)");
ABSL_FLAG(size_t, max_channel_length, EnvOr<size_t>("BRIDGE_MAX_CHANNEL_LENGTH", 256),
          "Longest channel or pattern name, in bytes (env BRIDGE_MAX_CHANNEL_LENGTH)");
ABSL_FLAG(size_t, max_payload_bytes, EnvOr<size_t>("BRIDGE_MAX_PAYLOAD_BYTES", 1 << 20),
          "Largest payload a client may publish (env BRIDGE_MAX_PAYLOAD_BYTES)");
ABSL_FLAG(absl::Duration, grpc_keepalive_time,
          EnvOr<absl::Duration>("BRIDGE_GRPC_KEEPALIVE_TIME", absl::Seconds(30)),
          "Interval of HTTP/2 keepalive pings on idle gRPC connections (env "
          "BRIDGE_GRPC_KEEPALIVE_TIME)");
ABSL_FLAG(absl::Duration, grpc_keepalive_timeout,
          EnvOr<absl::Duration>("BRIDGE_GRPC_KEEPALIVE_TIMEOUT", absl::Seconds(10)),
          "A gRPC peer that does not answer a keepalive ping within this is dropped (env "
          "BRIDGE_GRPC_KEEPALIVE_TIMEOUT)");
ABSL_FLAG(absl::Duration, grpc_self_check_interval,
          EnvOr<absl::Duration>("BRIDGE_GRPC_SELF_CHECK_INTERVAL", absl::Seconds(10)),
          "How often Bridge connects to its own gRPC port to see that it still accepts; when "
          "it does not, health says NOT_SERVING and bridge_grpc_accepting is 0; 0 for never "
          "(env BRIDGE_GRPC_SELF_CHECK_INTERVAL)");
ABSL_FLAG(std::string, ws_addr, EnvOr<std::string>("BRIDGE_WS_ADDR", "0.0.0.0:8080"),
          "WebSocket and HTTP (/ws, /healthz, the web page) listen address, host:port; empty "
          "for none (env BRIDGE_WS_ADDR)");
ABSL_FLAG(int, ws_threads, EnvOr<int>("BRIDGE_WS_THREADS", 0),
          "Threads of the WebSocket event loop; 0 means one per core (env BRIDGE_WS_THREADS)");
ABSL_FLAG(size_t, ws_max_frame, EnvOr<size_t>("BRIDGE_WS_MAX_FRAME", 64 << 10),
          "Largest WebSocket frame a client may send; larger ones close the socket with 1009 "
          "(env BRIDGE_WS_MAX_FRAME)");
ABSL_FLAG(size_t, ws_max_connections, EnvOr<size_t>("BRIDGE_WS_MAX_CONNECTIONS", 0),
          "Most open HTTP/WebSocket connections; more are closed as soon as accepted. 0: 3/4 "
          "of the open-file limit, leaving room for gRPC and Redis (env "
          "BRIDGE_WS_MAX_CONNECTIONS)");
ABSL_FLAG(size_t, ws_max_connections_per_ip, EnvOr<size_t>("BRIDGE_WS_MAX_CONNECTIONS_PER_IP", 256),
          "Most open HTTP/WebSocket connections from one client address; 0 for no cap (env "
          "BRIDGE_WS_MAX_CONNECTIONS_PER_IP)");
ABSL_FLAG(size_t, ws_max_subscriptions, EnvOr<size_t>("BRIDGE_WS_MAX_SUBSCRIPTIONS", 256),
          "Most channels plus patterns one WebSocket may hold (env BRIDGE_WS_MAX_SUBSCRIPTIONS)");
ABSL_FLAG(bool, ws_allow_publish, EnvOr<bool>("BRIDGE_WS_ALLOW_PUBLISH", false),
          "Let WebSocket clients publish (env BRIDGE_WS_ALLOW_PUBLISH)");
ABSL_FLAG(std::vector<std::string>, ws_allowed_origins,
          EnvOr<std::vector<std::string>>("BRIDGE_WS_ALLOWED_ORIGINS", {}),
          "Comma-separated Origins allowed to open /ws, e.g. https://app.example.com; empty "
          "allows all; requests without Origin are allowed (env BRIDGE_WS_ALLOWED_ORIGINS)");
ABSL_FLAG(absl::Duration, ws_ping_interval,
          EnvOr<absl::Duration>("BRIDGE_WS_PING_INTERVAL", absl::Seconds(20)),
          "Interval of WebSocket pings from the server (env BRIDGE_WS_PING_INTERVAL)");
ABSL_FLAG(absl::Duration, ws_idle_timeout,
          EnvOr<absl::Duration>("BRIDGE_WS_IDLE_TIMEOUT", absl::Seconds(60)),
          "A WebSocket from which nothing, not even a pong, arrived for this long is closed "
          "(env BRIDGE_WS_IDLE_TIMEOUT)");
ABSL_FLAG(double, ws_max_msgs_per_sec, EnvOr<double>("BRIDGE_WS_MAX_MSGS_PER_SEC", 50),
          "Frames per second a WebSocket client may send on average; beyond that and the "
          "burst, the socket is closed with 1008; 0 for no limit (env "
          "BRIDGE_WS_MAX_MSGS_PER_SEC)");
ABSL_FLAG(double, ws_msg_burst, EnvOr<double>("BRIDGE_WS_MSG_BURST", 100),
          "Frames a WebSocket client may send at once above that rate (env "
          "BRIDGE_WS_MSG_BURST)");
ABSL_FLAG(std::string, web_root, EnvOr<std::string>("BRIDGE_WEB_ROOT", ""),
          "Folder served over HTTP at / (the demo page: clients/web); empty serves none (env "
          "BRIDGE_WEB_ROOT)");
ABSL_FLAG(absl::Duration, shutdown_grace,
          EnvOr<absl::Duration>("BRIDGE_SHUTDOWN_GRACE", absl::Seconds(5)),
          "On SIGTERM/SIGINT, how long open streams get to finish before the process exits "
          "(env BRIDGE_SHUTDOWN_GRACE)");
ABSL_FLAG(bool, sched_batch, EnvOr<bool>("BRIDGE_SCHED_BATCH", true),
          "Run every thread under Linux's SCHED_BATCH policy, so that a thread woken by "
          "another (a gRPC write completion, say) does not preempt the one fanning a message "
          "out; under load this halves gRPC's CPU per delivery. Niceness is unchanged (env "
          "BRIDGE_SCHED_BATCH)");
ABSL_FLAG(std::string, log_level, EnvOr<std::string>("BRIDGE_LOG_LEVEL", "info"),
          "debug, info, warning or error (env BRIDGE_LOG_LEVEL)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Bridge carries Redis pub/sub to gRPC streams and WebSockets.\n"
      "Usage: bridge [--flag=value ...]; every flag also reads the environment variable "
      "named in its help, the command line winning.");
  absl::FlagsUsageConfig usage;
  // --help lists the flags of this binary (this file), not abseil's own.
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "bridge/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  // Debian's abseil checks every Mutex acquisition for lock-order cycles, which costs the
  // fan-out a graph update per lock. The tests keep that check (they never run main);
  // the server turns it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Before any thread starts: threads inherit the policy of the one that creates them.
  if (absl::GetFlag(FLAGS_sched_batch)) {
    const sched_param param{};
    if (sched_setscheduler(0, SCHED_BATCH, &param) != 0) {
      BRIDGE_LOG(Warning, "cannot use SCHED_BATCH: %s", std::strerror(errno));
    }
  }

  const std::string level = absl::AsciiStrToLower(absl::GetFlag(FLAGS_log_level));
  if (level == "debug") {
    bridge::SetLogLevel(bridge::LogLevel::kDebug);
  } else if (level == "warning") {
    bridge::SetLogLevel(bridge::LogLevel::kWarning);
  } else if (level == "error") {
    bridge::SetLogLevel(bridge::LogLevel::kError);
  } else if (level != "info") {
    std::fprintf(stderr, "bridge: --log_level must be debug, info, warning or error\n");
    return 2;
  }

  // Every connection costs a descriptor; the default soft limit (often 1024) is far below
  // what the hard one allows.
  const bridge::FdLimit before = bridge::CurrentFdLimit();
  const bridge::FdLimit fds = bridge::RaiseFdLimit();
  BRIDGE_LOG(Info, "open files: soft limit %d (was %d), hard limit %d", fds.soft, before.soft,
             fds.hard);

  bridge::AppOptions options;
  absl::StatusOr<bridge::redis::RedisUrl> url =
      bridge::redis::RedisUrl::Parse(absl::GetFlag(FLAGS_redis));
  if (!url.ok()) {
    std::fprintf(stderr, "bridge: --redis: %s\n", std::string(url.status().message()).c_str());
    return 2;
  }
  options.redis.url = absl::GetFlag(FLAGS_redis);
  options.redis.publish_key_window = absl::GetFlag(FLAGS_publish_key_window);
  options.redis.probe_interval = absl::GetFlag(FLAGS_probe_interval);
  options.redis.probe_timeout = absl::GetFlag(FLAGS_probe_timeout);
  options.redis.sentinel_refresh_interval = absl::GetFlag(FLAGS_sentinel_refresh_interval);
  options.redis.sharded_channels = absl::GetFlag(FLAGS_sharded_channels);
  if (!options.redis.sharded_channels.empty() && !url->is_cluster()) {
    std::fprintf(stderr,
                 "bridge: --sharded_channels needs a Redis Cluster: "
                 "--redis=redis+cluster://host:port,...\n");
    return 2;
  }
  absl::StatusOr<bridge::HistoryRules> history =
      bridge::HistoryRules::Parse(absl::GetFlag(FLAGS_history));
  if (!history.ok()) {
    std::fprintf(stderr, "bridge: %s\n", std::string(history.status().message()).c_str());
    return 2;
  }
  if (!history->empty()) {
    options.hub.durable = [rules = *std::move(history)](std::string_view channel) {
      return rules.For(channel);
    };
  }
  options.grpc_addr = absl::GetFlag(FLAGS_grpc_addr);
  options.subscriber.max_queued_messages = absl::GetFlag(FLAGS_max_queued_messages);
  options.subscriber.max_queued_bytes = absl::GetFlag(FLAGS_max_queued_bytes);
  const std::string policy = absl::GetFlag(FLAGS_slow_consumer);
  if (policy == "drop") {
    options.subscriber.policy = bridge::hub::SlowConsumerPolicy::kDrop;
  } else if (policy == "disconnect") {
    options.subscriber.policy = bridge::hub::SlowConsumerPolicy::kDisconnect;
  } else {
    std::fprintf(stderr, "bridge: --slow_consumer must be 'drop' or 'disconnect'\n");
    return 2;
  }
  options.subscriber.max_topics = absl::GetFlag(FLAGS_max_subscriptions);
  options.hub.max_topic_length = absl::GetFlag(FLAGS_max_channel_length);
  options.hub.max_topics = absl::GetFlag(FLAGS_max_topics);
  options.grpc_reflection = absl::GetFlag(FLAGS_grpc_reflection);
  options.hub.max_payload_bytes = absl::GetFlag(FLAGS_max_payload_bytes);
  options.grpc_keepalive_time = absl::GetFlag(FLAGS_grpc_keepalive_time);
  options.grpc_keepalive_timeout = absl::GetFlag(FLAGS_grpc_keepalive_timeout);
  options.grpc_self_check_interval = absl::GetFlag(FLAGS_grpc_self_check_interval);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.ws.address = absl::GetFlag(FLAGS_ws_addr);
  options.ws.threads = absl::GetFlag(FLAGS_ws_threads);
  options.ws.max_frame_bytes = absl::GetFlag(FLAGS_ws_max_frame);
  options.ws.max_subscriptions = absl::GetFlag(FLAGS_ws_max_subscriptions);
  options.ws.max_connections = absl::GetFlag(FLAGS_ws_max_connections);
  options.ws.max_connections_per_ip = absl::GetFlag(FLAGS_ws_max_connections_per_ip);
  options.ws.allow_publish = absl::GetFlag(FLAGS_ws_allow_publish);
  for (const std::string& origin : absl::GetFlag(FLAGS_ws_allowed_origins)) {
    if (!origin.empty()) options.ws.allowed_origins.push_back(origin);
  }
  options.ws.ping_interval = absl::GetFlag(FLAGS_ws_ping_interval);
  options.ws.idle_timeout = absl::GetFlag(FLAGS_ws_idle_timeout);
  options.ws.max_client_frames_per_sec = absl::GetFlag(FLAGS_ws_max_msgs_per_sec);
  options.ws.client_frame_burst = absl::GetFlag(FLAGS_ws_msg_burst);
  options.ws.web_root = absl::GetFlag(FLAGS_web_root);
  options.access_file = absl::GetFlag(FLAGS_access_file);

  // Every thread started from here on inherits the blocked signals; this one waits for
  // them synchronously, so no handler runs in the middle of anything.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  bridge::App app(options);
  if (absl::Status st = app.Start(); !st.ok()) {
    BRIDGE_LOG(Error, "cannot start: %s", st.ToString());
    // A file the flags name that is missing or wrong is bad configuration, like a bad flag.
    const bool configuration =
        st.code() == absl::StatusCode::kInvalidArgument || st.code() == absl::StatusCode::kNotFound;
    return configuration ? 2 : 1;
  }
  BRIDGE_LOG(Info, "bridging %s", url->Redacted());
  int signal_number = 0;
  // SIGHUP re-reads the access file; the process runs on.
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    if (absl::Status st = app.ReloadAccess(); !st.ok()) {
      BRIDGE_LOG(Error, "SIGHUP: the access file stays as it was: %s", st.ToString());
    } else {
      BRIDGE_LOG(Info, "SIGHUP: access file %s read again",
                 options.access_file.empty() ? "(none)" : options.access_file);
    }
  }
  BRIDGE_LOG(Info, "received %s", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");

  // A stuck drain must not keep the process alive past its grace.
  std::thread([grace = options.shutdown_grace] {
    absl::SleepFor(grace + absl::Seconds(2));
    BRIDGE_LOG(Error, "shutdown exceeded its grace; exiting");
    _exit(1);
  }).detach();
  app.Shutdown();
  return 0;
}
