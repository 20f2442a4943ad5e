// The bridge binary: parses flags (each also read from a BRIDGE_* environment variable),
// builds an App, runs it until SIGTERM or SIGINT, then drains and exits.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/app/app.h"
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
          "Redis to bridge: redis://[user:password@]host:port[/db], or the path of a Unix "
          "socket (env BRIDGE_REDIS)");
ABSL_FLAG(std::string, grpc_addr, EnvOr<std::string>("BRIDGE_GRPC_ADDR", "0.0.0.0:50051"),
          "gRPC listen address, host:port (env BRIDGE_GRPC_ADDR)");
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
ABSL_FLAG(absl::Duration, shutdown_grace,
          EnvOr<absl::Duration>("BRIDGE_SHUTDOWN_GRACE", absl::Seconds(5)),
          "On SIGTERM/SIGINT, how long open streams get to finish before the process exits "
          "(env BRIDGE_SHUTDOWN_GRACE)");
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

  bridge::AppOptions options;
  absl::StatusOr<bridge::redis::RedisUrl> url =
      bridge::redis::RedisUrl::Parse(absl::GetFlag(FLAGS_redis));
  if (!url.ok()) {
    std::fprintf(stderr, "bridge: --redis: %s\n", std::string(url.status().message()).c_str());
    return 2;
  }
  options.redis.url = absl::GetFlag(FLAGS_redis);
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
  options.hub.max_payload_bytes = absl::GetFlag(FLAGS_max_payload_bytes);
  options.grpc_keepalive_time = absl::GetFlag(FLAGS_grpc_keepalive_time);
  options.grpc_keepalive_timeout = absl::GetFlag(FLAGS_grpc_keepalive_timeout);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);

  // Every thread started from here on inherits the blocked signals; this one waits for
  // them synchronously, so no handler runs in the middle of anything.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  bridge::App app(options);
  if (absl::Status st = app.Start(); !st.ok()) {
    BRIDGE_LOG(Error, "cannot start: %s", st.ToString());
    return 1;
  }
  BRIDGE_LOG(Info, "bridging %s", url->Redacted());
  int signal_number = 0;
  sigwait(&signals, &signal_number);
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
