// fanout_bench: N subscribers of one transport (gRPC streams, WebSockets, or plain Redis
// connections) against a running target; publishes M messages of S bytes straight to
// Redis (on a cluster, SPUBLISH to each channel's master), or through the target's gRPC
// Publish, and reports deliveries/s, publish->receive latency, loss and reordering, and the
// CPU and memory of the target and of its Redis (all its nodes). With no subscribers it
// measures publishing alone. With --storm: publishes to a durable channel first, then
// opens every stream at once, resuming from an older offset, and measures the catch-up.
// One human table and one JSON line per run. Starts nothing by itself: bench/run starts
// the servers.
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/fanout/grpc_clients.h"
#include "bench/fanout/proc_stats.h"
#include "bench/fanout/publisher.h"
#include "bench/fanout/receiver.h"
#include "bench/fanout/ws_clients.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, transport, "grpc", "grpc, ws, or redis (subscribers straight to Redis)");
ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "host:port of the server under test (for --transport=redis: the Redis to subscribe to)");
ABSL_FLAG(std::string, ws_path, "/ws", "WebSocket path");
ABSL_FLAG(std::string, redis, "127.0.0.1:6379", "host:port of the Redis to publish to");
ABSL_FLAG(bool, redis_cluster, false,
          "--redis is a node of a Redis Cluster: publish with SPUBLISH, each message to the "
          "master that owns its channel's hash slot (the server must carry the channels as "
          "sharded pub/sub)");
ABSL_FLAG(std::string, publish_via, "redis",
          "redis: publish straight to --redis; grpc: through the target's bridge.v1.Bridge/"
          "Publish (--transport=grpc), as a durable channel's messages must be");
ABSL_FLAG(uint64_t, publish_in_flight, 128,
          "--publish_via=grpc: the most Publish calls in flight at once");
ABSL_FLAG(int, subscribers, 100,
          "number of subscribers (streams, sockets, connections); 0 with --publish_via=grpc "
          "measures publishing alone");
ABSL_FLAG(int, channels, 1, "channels; subscriber i takes channel i % channels");
ABSL_FLAG(std::string, channel_prefix, "bench", "channel names are <prefix>.<index>");
ABSL_FLAG(uint64_t, messages, 1000, "messages to publish in all");
ABSL_FLAG(uint64_t, payload, 100, "payload size in bytes");
ABSL_FLAG(double, duration, 0,
          "stop publishing after this many seconds (0 = when --messages are out)");
ABSL_FLAG(double, rate, 0, "messages per second in all; 0 = saturate within --window");
ABSL_FLAG(uint64_t, window, 0,
          "most messages in flight (published, not yet delivered to all); 0 = 20000/fan-out, "
          "within [4, 1000]");
ABSL_FLAG(int, grpc_connections, 4, "gRPC connections the streams are spread over");
ABSL_FLAG(bool, grpc_batched, false,
          "gRPC: SubscribeBatched streams (EventBatch) instead of Subscribe (Event)");
ABSL_FLAG(int, threads, 1, "client threads (Asio threads, or gRPC completion-queue pollers)");
ABSL_FLAG(int, connect_concurrency, 256, "connections opened at once during the ramp");
ABSL_FLAG(double, connect_timeout, 60, "seconds for every subscriber to be live");
ABSL_FLAG(double, drain_timeout, 3, "seconds without a delivery before giving up on the rest");
ABSL_FLAG(int, target_pid, 0, "pid of the server under test, for its CPU and memory");
ABSL_FLAG(std::vector<std::string>, redis_pid, {},
          "pid of its redis-server, or comma-separated pids (a cluster's nodes), for their CPU, "
          "summed; a pid that is the target's is counted once");
ABSL_FLAG(bool, idle, false, "only connect, hold, and measure the target's memory");
ABSL_FLAG(double, hold, 2, "--idle: seconds to hold the connections before measuring");
ABSL_FLAG(int, reps, 1, "publish runs on the same connections, one JSON line each");
ABSL_FLAG(std::string, label, "", "name of the system under test, copied to the JSON");
ABSL_FLAG(bool, storm, false,
          "a resume storm on a durable channel (--transport=grpc, --channels=1): publish "
          "--messages through the target's Publish with no subscriber, then open the "
          "--subscribers streams at once and time until each has the last offset (with "
          "--resume_behind) or is subscribed (without)");
ABSL_FLAG(uint64_t, resume_behind, 0,
          "--storm: each stream resumes this many messages before the last one published; "
          "0: plain subscribes, nothing to recover");
ABSL_FLAG(std::string, json, "", "also append the JSON line to this file");

namespace bridge::bench {
namespace {

bool SplitHostPort(const std::string& s, std::string* host, int* port) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *host = s.substr(0, colon);
  return absl::SimpleAtoi(s.substr(colon + 1), port);
}

double Seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

struct CpuSample {
  double target = 0, redis = 0, own = 0;
  // Of target + redis, the seconds spent in the kernel.
  double server_kernel = 0;
  int64_t target_switches = 0;
  uint64_t wall_ns = 0;
};

CpuSample SampleCpu(pid_t target, const std::vector<pid_t>& redis) {
  CpuSample s;
  s.wall_ns = NowNs();
  const ProcSample t = SampleProcess(target);
  s.target = t.cpu_seconds;
  s.server_kernel = t.kernel_seconds;
  s.target_switches = t.context_switches;
  for (const pid_t pid : redis) {
    if (pid == target) continue;
    const ProcSample r = SampleProcess(pid);
    s.redis += r.cpu_seconds;
    s.server_kernel += r.kernel_seconds;
  }
  s.own = OwnCpuSeconds();
  return s;
}

// Prints the run's JSON line, and appends it to --json.
void Emit(const nlohmann::json& out) {
  const std::string line = out.dump();
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream(path, std::ios::app) << line << "\n";
  }
}

// The time from `start` to each subscriber's moment (`when` of it; 0: never), in ms:
// p50, p99 and max of those that came.
nlohmann::json TimesMs(Receiver* receiver, uint64_t start,
                       uint64_t (*when)(const Receiver::Subscriber&)) {
  std::vector<uint64_t> ns;
  for (int i = 0; i < receiver->size(); ++i) {
    const uint64_t t = when(receiver->subscriber(i));
    if (t != 0) ns.push_back(t > start ? t - start : 0);
  }
  if (ns.empty()) return nullptr;
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    return static_cast<double>(ns[static_cast<size_t>(q * static_cast<double>(ns.size() - 1))]) /
           1e6;
  };
  return {{"p50", at(0.5)}, {"p99", at(0.99)}, {"max", at(1.0)}, {"count", ns.size()}};
}

// --storm: the history first (published through the target with no subscriber), then every
// stream at once; measured from the first stream opened to the last subscriber done.
int RunStorm(Receiver* receiver, GrpcClients* clients, const PublisherOptions& po, uint64_t behind,
             pid_t target_pid, const std::vector<pid_t>& redis_pids, nlohmann::json out) {
  const int n = receiver->size();
  PublisherOptions history = po;
  history.fanout = 0;  // Nobody is subscribed yet.
  history.duration_seconds = 0;
  Publisher publisher(history, receiver);
  if (auto st = publisher.Connect(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  const PublisherResult pr = publisher.Run();
  out["kind"] = "storm";
  out["published"] = pr.published;
  out["publish_s"] = pr.seconds;
  out["publish_errors"] = pr.errors;
  out["top_offset"] = pr.top_offset;
  out["epoch"] = pr.epoch;
  if (pr.errors > 0 || pr.durable != pr.published || pr.top_offset == 0) {
    std::fprintf(stderr,
                 "fanout_bench: --storm: %llu of %llu publishes answered an offset (%llu "
                 "failed): is %s a durable channel of the target?\n",
                 static_cast<unsigned long long>(pr.durable),
                 static_cast<unsigned long long>(pr.published),
                 static_cast<unsigned long long>(pr.errors), receiver->ChannelName(0).c_str());
    Emit(out);
    return 1;
  }
  const uint64_t from = pr.top_offset - std::min(behind, pr.top_offset);
  const uint64_t want = pr.top_offset - from;  // each subscriber's recovered messages
  if (behind > 0) {
    clients->set_resume(from, pr.epoch);
    receiver->set_catch_up_offset(pr.top_offset);
  }
  out["resume_behind"] = behind;
  out["resume_from"] = behind > 0 ? nlohmann::json(from) : nlohmann::json(nullptr);

  const ProcSample before = SampleProcess(target_pid);
  ResetPeakRss(target_pid);
  const CpuSample c0 = SampleCpu(target_pid, redis_pids);
  clients->Start();
  const uint64_t deadline =
      c0.wall_ns + static_cast<uint64_t>(absl::GetFlag(FLAGS_connect_timeout) * 1e9);
  auto done = [&] {
    return (behind > 0 ? receiver->caught_up() : receiver->live()) + receiver->failed() >= n;
  };
  while (!done() && NowNs() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const CpuSample c1 = SampleCpu(target_pid, redis_pids);
  const ProcSample peak = SampleProcess(target_pid);

  uint64_t recovered = 0, gaps = 0;
  int incomplete = 0;
  for (int i = 0; i < n; ++i) {
    const Receiver::Subscriber& s = receiver->subscriber(i);
    recovered += s.recovered;
    gaps += s.gaps;
    // Each offset after `from` once, in order, every one recovered.
    if (behind > 0 && (s.first_offset != from + 1 || s.received != want || s.recovered != want ||
                       s.reordered != 0)) {
      ++incomplete;
    }
  }
  const nlohmann::json subscribed =
      TimesMs(receiver, c0.wall_ns, [](const Receiver::Subscriber& s) { return s.subscribed_ns; });
  const nlohmann::json caught_up =
      TimesMs(receiver, c0.wall_ns, [](const Receiver::Subscriber& s) { return s.caught_up_ns; });
  const nlohmann::json& finish = behind > 0 ? caught_up : subscribed;
  const int finished = behind > 0 ? receiver->caught_up() : receiver->live();
  const double target_cpu = c1.target - c0.target;
  const double redis_cpu = c1.redis - c0.redis;
  out["live"] = receiver->live();
  out["connect_failed"] = receiver->failed();
  out["finished"] = finished;
  out["storm_ms"] = finish.is_null() ? nlohmann::json(nullptr) : finish["max"];
  out["subscribed_ms"] = subscribed;
  out["caught_up_ms"] = caught_up;
  out["recovered"] = recovered;
  out["recovered_expected"] = behind > 0 ? want * static_cast<uint64_t>(n) : 0;
  out["incomplete"] = incomplete;
  out["gaps"] = gaps;
  out["gap_reasons"] = receiver->gap_reasons();
  out["target_cpu_s"] = target_cpu;
  out["redis_cpu_s"] = redis_cpu;
  out["server_cpu_s"] = target_cpu + redis_cpu;
  out["server_kernel_s"] = c1.server_kernel - c0.server_kernel;
  out["server_cpu_ms_per_subscriber"] = (target_cpu + redis_cpu) * 1e3 / n;
  out["server_cpu_us_per_recovered"] =
      recovered > 0 ? (target_cpu + redis_cpu) * 1e6 / static_cast<double>(recovered) : 0;
  out["generator_cpu_s"] = c1.own - c0.own;
  out["rss_before_kb"] = before.rss_kb;
  out["target_peak_rss_kb"] = peak.peak_rss_kb;
  out["target_rss_kb"] = peak.rss_kb;
  out["target_threads"] = peak.threads;
  std::printf(
      "%-22s storm %5d subs  %s  done %d  in %.1f ms  recovered %llu of %llu  incomplete %d  "
      "gaps %llu  CPU Bridge %.3f s Redis %.3f s  RSS %lld -> peak %lld KiB\n",
      absl::GetFlag(FLAGS_label).c_str(), n,
      behind > 0 ? ("resume " + std::to_string(behind) + " behind").c_str() : "join", finished,
      finish.is_null() ? 0.0 : finish["max"].get<double>(),
      static_cast<unsigned long long>(recovered),
      static_cast<unsigned long long>(out["recovered_expected"].get<uint64_t>()), incomplete,
      static_cast<unsigned long long>(gaps), target_cpu, redis_cpu,
      static_cast<long long>(before.rss_kb), static_cast<long long>(peak.peak_rss_kb));
  Emit(out);
  clients->Stop();
  if (finished == n && incomplete == 0 && receiver->failed() == 0) return 0;
  std::string reasons;
  for (const auto& [reason, count] : receiver->gap_reasons()) {
    reasons += " " + reason + ":" + std::to_string(count);
  }
  std::fprintf(stderr,
               "fanout_bench: --storm: %d of %d streams done, %d incomplete, %d failed, %llu "
               "gaps%s\n",
               finished, n, incomplete, receiver->failed(), static_cast<unsigned long long>(gaps),
               reasons.empty() ? "" : (" (" + reasons.substr(1) + ")").c_str());
  return 1;
}

int Main() {
  const std::string transport = absl::GetFlag(FLAGS_transport);
  const int n = absl::GetFlag(FLAGS_subscribers);
  const int channels = absl::GetFlag(FLAGS_channels);
  const std::string publish_via = absl::GetFlag(FLAGS_publish_via);
  const bool storm = absl::GetFlag(FLAGS_storm);
  const bool via_grpc = publish_via == "grpc" || storm;
  if (publish_via != "redis" && publish_via != "grpc") {
    std::fprintf(stderr, "--publish_via must be redis or grpc\n");
    return 2;
  }
  if (via_grpc && (transport != "grpc" || absl::GetFlag(FLAGS_redis_cluster))) {
    std::fprintf(stderr,
                 "publishing through the target (--publish_via=grpc, --storm) needs "
                 "--transport=grpc and no --redis_cluster\n");
    return 2;
  }
  if (storm && (channels != 1 || n <= 0 || absl::GetFlag(FLAGS_reps) > 1 ||
                absl::GetFlag(FLAGS_idle) || absl::GetFlag(FLAGS_messages) == 0)) {
    std::fprintf(stderr,
                 "--storm is one run of one channel: --channels=1, --subscribers > 0, "
                 "--messages > 0, no --reps or --idle\n");
    return 2;
  }
  // No subscriber: a run of publishes alone, which only the target's Publish can count.
  const bool publish_only = n == 0 && via_grpc && !storm && !absl::GetFlag(FLAGS_idle);
  if ((n <= 0 && !publish_only) || channels <= 0 || n % channels != 0) {
    std::fprintf(stderr,
                 "--subscribers must be a positive multiple of --channels (or 0 with "
                 "--publish_via=grpc)\n");
    return 2;
  }
  const uint64_t fanout = static_cast<uint64_t>(n / channels);
  const pid_t target_pid = absl::GetFlag(FLAGS_target_pid);
  std::vector<pid_t> redis_pids;
  for (const std::string& p : absl::GetFlag(FLAGS_redis_pid)) {
    int pid = 0;
    if (!absl::SimpleAtoi(p, &pid) || pid <= 0) {
      std::fprintf(stderr, "--redis_pid takes process ids, comma-separated\n");
      return 2;
    }
    redis_pids.push_back(pid);
  }
  const uint64_t files = RaiseFileLimit();
  if (files < static_cast<uint64_t>(n) + 64) {
    std::fprintf(stderr, "fanout_bench: open-files limit %llu is too low for %d subscribers\n",
                 static_cast<unsigned long long>(files), n);
    return 2;
  }

  std::string host;
  int port = 0;
  if (!SplitHostPort(absl::GetFlag(FLAGS_target), &host, &port)) {
    std::fprintf(stderr, "--target must be host:port\n");
    return 2;
  }
  Receiver receiver(n, channels);
  receiver.set_prefix(absl::GetFlag(FLAGS_channel_prefix));
  std::unique_ptr<Clients> clients;
  const int threads = absl::GetFlag(FLAGS_threads);
  const int concurrency = absl::GetFlag(FLAGS_connect_concurrency);
  GrpcClients* grpc_clients = nullptr;
  if (transport != "grpc" && transport != "ws" && transport != "redis") {
    std::fprintf(stderr, "--transport must be grpc, ws or redis\n");
    return 2;
  }
  if (publish_only) {
    // Nobody to subscribe.
  } else if (transport == "grpc") {
    auto g = std::make_unique<GrpcClients>(&receiver, absl::GetFlag(FLAGS_target),
                                           absl::GetFlag(FLAGS_grpc_connections), threads,
                                           absl::GetFlag(FLAGS_grpc_batched));
    grpc_clients = g.get();
    clients = std::move(g);
  } else if (transport == "ws") {
    clients = std::make_unique<WsClients>(&receiver, host, port, absl::GetFlag(FLAGS_ws_path),
                                          threads, concurrency);
  } else {
    clients = std::make_unique<RedisClients>(&receiver, host, port, threads, concurrency);
  }

  nlohmann::json out;
  out["label"] = absl::GetFlag(FLAGS_label);
  out["transport"] = transport;
  out["redis_cluster"] = absl::GetFlag(FLAGS_redis_cluster);
  out["subscribers"] = n;
  out["channels"] = channels;
  out["payload"] = absl::GetFlag(FLAGS_payload);
  out["idle"] = absl::GetFlag(FLAGS_idle);
  out["publish_via"] = via_grpc ? "grpc" : "redis";

  PublisherOptions po;
  SplitHostPort(absl::GetFlag(FLAGS_redis), &po.host, &po.port);
  po.cluster = absl::GetFlag(FLAGS_redis_cluster);
  if (via_grpc) po.grpc_target = absl::GetFlag(FLAGS_target);
  po.grpc_in_flight = absl::GetFlag(FLAGS_publish_in_flight);
  po.channels = channels;
  po.messages = absl::GetFlag(FLAGS_messages);
  po.payload_bytes = absl::GetFlag(FLAGS_payload);
  po.rate = absl::GetFlag(FLAGS_rate);
  po.fanout = fanout;
  po.duration_seconds = absl::GetFlag(FLAGS_duration);
  po.window = absl::GetFlag(FLAGS_window);
  // About 20k deliveries in flight: enough to keep every system busy, few enough that
  // none is buried under a backlog, and always under Bridge's default queue bound (4096
  // messages per subscriber), so no slow-consumer policy fires in a saturation run. With
  // no subscriber only the pipeline bounds the publishes in flight.
  if (po.window == 0) {
    po.window = fanout > 0 ? std::clamp<uint64_t>(20000 / fanout, 4, 1000) : uint64_t{1} << 40;
  }

  if (storm) {
    return RunStorm(&receiver, grpc_clients, po, absl::GetFlag(FLAGS_resume_behind), target_pid,
                    redis_pids, out);
  }

  // Ramp: connect everyone and wait for every subscription to be confirmed.
  const ProcSample before_connect = SampleProcess(target_pid);
  const uint64_t ramp_start = NowNs();
  if (clients) clients->Start();
  const uint64_t deadline =
      ramp_start + static_cast<uint64_t>(absl::GetFlag(FLAGS_connect_timeout) * 1e9);
  while (receiver.live() + receiver.failed() < n && NowNs() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double ramp_s = Seconds(NowNs() - ramp_start);
  out["connect_s"] = ramp_s;
  out["live"] = receiver.live();
  out["connect_failed"] = receiver.failed();
  int rc = 0;
  if (receiver.live() < n) {
    std::fprintf(stderr, "fanout_bench: only %d of %d subscribers live after %.1f s\n",
                 receiver.live(), n, ramp_s);
    rc = 1;
  }

  if (absl::GetFlag(FLAGS_idle)) {
    std::this_thread::sleep_for(std::chrono::duration<double>(absl::GetFlag(FLAGS_hold)));
    const ProcSample held = SampleProcess(target_pid);
    out["rss_before_kb"] = before_connect.rss_kb;
    out["rss_after_kb"] = held.rss_kb;
    const double per = n > 0 ? static_cast<double>(held.rss_kb - before_connect.rss_kb) / n : 0;
    out["rss_per_subscriber_kb"] = per;
    out["target_threads"] = held.threads;
    std::printf(
        "%-22s %-6s idle %6d subs  live %6d  RSS %7lld -> %7lld KiB  = %6.2f KiB/sub  "
        "ramp %.1f s\n",
        absl::GetFlag(FLAGS_label).c_str(), transport.c_str(), n, receiver.live(),
        static_cast<long long>(before_connect.rss_kb), static_cast<long long>(held.rss_kb), per,
        ramp_s);
  } else if (rc == 0) {
    const int reps = std::max(1, absl::GetFlag(FLAGS_reps));
    for (int rep = 0; rep < reps; ++rep) {
      if (rep > 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
      receiver.ResetCounts();
      out["rep"] = rep;
      Publisher publisher(po, &receiver);
      if (auto st = publisher.Connect(); !st.ok()) {
        std::fprintf(stderr, "%s\n", st.ToString().c_str());
        return 1;
      }
      ResetPeakRss(target_pid);
      const CpuSample c0 = SampleCpu(target_pid, redis_pids);
      const PublisherResult pr = publisher.Run();
      const uint64_t expected = pr.published * fanout;
      // Drain: wait for the rest, giving up after a quiet spell.
      const uint64_t drain_ns = static_cast<uint64_t>(absl::GetFlag(FLAGS_drain_timeout) * 1e9);
      uint64_t last = receiver.delivered(), quiet_since = NowNs();
      while (receiver.delivered() < expected) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        const uint64_t d = receiver.delivered();
        if (d != last) {
          last = d;
          quiet_since = NowNs();
        } else if (NowNs() - quiet_since > drain_ns) {
          break;
        }
      }
      const CpuSample c1 = SampleCpu(target_pid, redis_pids);
      const ProcSample peak = SampleProcess(target_pid);
      const uint64_t delivered = receiver.delivered();
      const uint64_t end = std::max(receiver.last_delivery_ns(), c0.wall_ns + 1);
      const double wall_s = Seconds(c1.wall_ns - c0.wall_ns);
      // Publishing alone ends with the last answer.
      const double active_s = publish_only ? wall_s : Seconds(end - c0.wall_ns);
      uint64_t lost = 0, reordered = 0, gaps = 0;
      int lossy = 0;
      const uint64_t per_channel_total = pr.published / channels;
      for (int i = 0; i < n; ++i) {
        const auto& s = receiver.subscriber(i);
        // Channel c got the messages i with i % channels == c.
        const uint64_t want = per_channel_total +
                              (static_cast<uint64_t>(s.channel) < pr.published % channels ? 1 : 0);
        const uint64_t unique = s.received - s.reordered;
        if (unique < want) {
          lost += want - unique;
          ++lossy;
        }
        reordered += s.reordered;
        gaps += s.gaps;
      }
      const double target_cpu = c1.target - c0.target;
      const double redis_cpu = c1.redis - c0.redis;
      const double server_cpu = target_cpu + redis_cpu;
      const double own_cpu = c1.own - c0.own;
      const double server_util = wall_s > 0 ? server_cpu / active_s : 0;
      const double gen_util = wall_s > 0 ? own_cpu / active_s : 0;
      const char* bottleneck = server_util >= 0.85 && gen_util >= 0.85 ? "both"
                               : server_util >= 0.85                   ? "target"
                               : gen_util >= 0.85                      ? "generator"
                                                                       : "neither";
      const auto& h = receiver.latency();
      auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1e3; };
      out["rate"] = po.rate;
      out["window"] = po.window;
      out["published"] = pr.published;
      out["publish_s"] = pr.seconds;
      out["publish_errors"] = pr.errors;
      out["window_stalls"] = pr.stalls;
      out["expected"] = expected;
      out["delivered"] = delivered;
      out["lost"] = lost;
      out["lossy_subscribers"] = lossy;
      out["reordered"] = reordered;
      out["gaps"] = gaps;
      out["gap_reasons"] = receiver.gap_reasons();
      out["malformed"] = receiver.malformed();
      out["duration_s"] = active_s;
      out["deliveries_per_s"] = active_s > 0 ? static_cast<double>(delivered) / active_s : 0;
      out["messages_per_s"] = active_s > 0 ? static_cast<double>(pr.published) / active_s : 0;
      // What each publish cost the target and its Redis (with subscribers, their fan-out
      // too).
      const double published = static_cast<double>(std::max<uint64_t>(pr.published, 1));
      out["target_cpu_us_per_publish"] = target_cpu * 1e6 / published;
      out["redis_cpu_us_per_publish"] = redis_cpu * 1e6 / published;
      out["server_cpu_us_per_publish"] = server_cpu * 1e6 / published;
      out["server_kernel_us_per_publish"] = (c1.server_kernel - c0.server_kernel) * 1e6 / published;
      if (via_grpc) {
        out["durable_answers"] = pr.durable;
        out["top_offset"] = pr.top_offset;
        out["epoch"] = pr.epoch;
      }
      out["durable_deliveries"] = receiver.durable();
      out["latency_us"] = {{"p50", us(h.Quantile(0.5))},
                           {"p90", us(h.Quantile(0.9))},
                           {"p99", us(h.Quantile(0.99))},
                           {"p999", us(h.Quantile(0.999))},
                           {"max", us(h.Max())}};
      out["target_cpu_s"] = target_cpu;
      out["redis_cpu_s"] = redis_cpu;
      out["server_cpu_us_per_delivery"] =
          delivered > 0 ? server_cpu * 1e6 / static_cast<double>(delivered) : 0;
      // The kernel's share: on loopback it includes the receiving side's TCP processing,
      // which runs in the sender's softirq.
      out["server_kernel_us_per_delivery"] =
          delivered > 0
              ? (c1.server_kernel - c0.server_kernel) * 1e6 / static_cast<double>(delivered)
              : 0;
      out["generator_cpu_s"] = own_cpu;
      out["target_context_switches_per_delivery"] =
          delivered > 0 ? static_cast<double>(c1.target_switches - c0.target_switches) /
                              static_cast<double>(delivered)
                        : 0;
      out["server_util"] = server_util;
      out["generator_util"] = gen_util;
      out["bottleneck"] = bottleneck;
      out["target_peak_rss_kb"] = peak.peak_rss_kb;
      out["target_rss_kb"] = peak.rss_kb;
      out["target_threads"] = peak.threads;
      if (publish_only) {
        std::printf(
            "%-22s publish %4d ch  %5llu B  %.0f publishes/s  errors %llu  durable %llu  srv "
            "%.2f us/publish (Redis %.2f)  gen util %.2f  [%s]  RSS %lld KiB\n",
            absl::GetFlag(FLAGS_label).c_str(), channels,
            static_cast<unsigned long long>(po.payload_bytes), out["messages_per_s"].get<double>(),
            static_cast<unsigned long long>(pr.errors), static_cast<unsigned long long>(pr.durable),
            out["server_cpu_us_per_publish"].get<double>(),
            out["redis_cpu_us_per_publish"].get<double>(), gen_util, bottleneck,
            static_cast<long long>(peak.peak_rss_kb));
        Emit(out);
        continue;
      }
      std::printf(
          "%-22s %-5s subs %5d ch %4d  %5llu B  %s  deliv/s %10.0f  p50 %8.1f p99 %8.1f p99.9 "
          "%8.1f max %8.1f us  lost %llu reord %llu gaps %llu  srv %.2f us/deliv (util %.2f)  "
          "gen util %.2f  [%s]  RSS %lld KiB\n",
          absl::GetFlag(FLAGS_label).c_str(), transport.c_str(), n, channels,
          static_cast<unsigned long long>(po.payload_bytes),
          po.rate > 0 ? ("rate " + std::to_string(static_cast<long>(po.rate))).c_str() : "sat",
          out["deliveries_per_s"].get<double>(), us(h.Quantile(0.5)), us(h.Quantile(0.99)),
          us(h.Quantile(0.999)), us(h.Max()), static_cast<unsigned long long>(lost),
          static_cast<unsigned long long>(reordered), static_cast<unsigned long long>(gaps),
          out["server_cpu_us_per_delivery"].get<double>(), server_util, gen_util, bottleneck,
          static_cast<long long>(peak.peak_rss_kb));
      Emit(out);
    }
    if (clients) clients->Stop();
    return rc;
  }
  Emit(out);
  if (clients) clients->Stop();
  return rc;
}

}  // namespace
}  // namespace bridge::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("fanout_bench: fan-out throughput and latency of a pub/sub bridge");
  absl::ParseCommandLine(argc, argv);
  return bridge::bench::Main();
}
