// Micro-benchmarks of the hot path, one message from Redis to the bytes a front end
// writes: hub fan-out into subscriber queues, the queue itself, and the per-front-end
// encodings (gRPC Event, WebSocket frame).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "bridge/common/log.h"
#include "bridge/grpc/event_codec.h"
#include "bridge/hub/hub.h"
#include "bridge/hub/message.h"
#include "bridge/hub/subscriber.h"
#include "tests/hub/fake_upstream.h"
#ifdef BRIDGE_BENCH_HAVE_WS
#include "bridge/ws/server_frame.h"
#endif

namespace bridge::hub {
namespace {

class NullSink : public Sink {
 public:
  void OnReady() override {}
};

std::string Payload(size_t n) { return std::string(n, 'p'); }

// N subscribers of `hub`, each subscribed to `channels`; empty (and the benchmark marked
// failed) if the hub refuses one.
std::vector<std::shared_ptr<Subscriber>> ConnectMany(benchmark::State& state, Hub& hub, int n,
                                                     const std::vector<std::string>& channels) {
  std::vector<std::shared_ptr<Subscriber>> subs;
  for (int i = 0; i < n; ++i) {
    auto s = hub.Connect(std::make_shared<NullSink>(), SubscriberOptions{});
    if (!s.ok() || !hub.Subscribe(*s, channels, {}).ok()) {
      state.SkipWithError("connect or subscribe failed");
      return {};
    }
    subs.push_back(*s);
  }
  return subs;
}

// One message from the upstream to N subscribers, each of which then takes it from its
// queue, as a front end would: the cost per delivery of the hub's part.
void BM_HubFanout(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  FakeUpstream upstream;
  Hub hub(HubOptions{}, &upstream);
  upstream.Connect(1);
  std::vector<std::shared_ptr<Subscriber>> subs = ConnectMany(state, hub, n, {"c"});
  if (subs.empty()) return;
  upstream.ConfirmAll();
  Event e;
  for (auto& s : subs) {
    while (s->Pop(&e) == Subscriber::PopResult::kEvent) {
    }
  }
  const std::string payload = Payload(100);
  const Topic topic = Topic::Channel("c");
  for (auto _ : state) {
    hub.OnMessage(topic, "c", payload);
    for (auto& s : subs) {
      while (s->Pop(&e) == Subscriber::PopResult::kEvent) {
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["deliveries/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
  for (auto& s : subs) hub.Disconnect(s);
}
BENCHMARK(BM_HubFanout)->Arg(1)->Arg(100)->Arg(10000)->Unit(benchmark::kMicrosecond);

// N subscribers joining one live channel, then leaving it, as browsers do after a
// deploy: the cost per join and per leave of rebuilding the channel's subscriber list.
void BM_HubJoinLeave(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  FakeUpstream upstream;
  Hub hub(HubOptions{}, &upstream);
  upstream.Connect(1);
  // One subscriber keeps the channel live, so every join is a join to a live list.
  std::vector<std::shared_ptr<Subscriber>> anchor = ConnectMany(state, hub, 1, {"c"});
  if (anchor.empty()) return;
  upstream.ConfirmAll();
  std::vector<std::shared_ptr<Subscriber>> subs = ConnectMany(state, hub, n, {});
  if (subs.empty()) return;
  for (auto _ : state) {
    for (auto& s : subs) benchmark::DoNotOptimize(hub.Subscribe(s, {"c"}, {}));
    for (auto& s : subs) hub.Unsubscribe(s, {"c"}, {});
  }
  state.SetItemsProcessed(state.iterations() * n);
  for (auto& s : subs) hub.Disconnect(s);
  hub.Disconnect(anchor.front());
}
BENCHMARK(BM_HubJoinLeave)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

// One subscriber queue: push a shared message, pop it.
void BM_SubscriberPushPop(benchmark::State& state) {
  Subscriber s(std::make_shared<NullSink>(), SubscriberOptions{});
  auto m = std::make_shared<const Message>("c", "", Payload(100), 1);
  Event e;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.PushMessage(m));
    benchmark::DoNotOptimize(s.Pop(&e));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SubscriberPushPop);

// A burst of 64 pushes taken with PopMany, as a front end that coalesces writes would.
void BM_SubscriberBurst64(benchmark::State& state) {
  Subscriber s(std::make_shared<NullSink>(), SubscriberOptions{});
  auto m = std::make_shared<const Message>("c", "", Payload(100), 1);
  std::vector<Event> out;
  out.reserve(64);
  for (auto _ : state) {
    for (int i = 0; i < 64; ++i) benchmark::DoNotOptimize(s.PushMessage(m));
    out.clear();
    benchmark::DoNotOptimize(s.PopMany(&out, 64));
  }
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_SubscriberBurst64);

// The gRPC Event encoding of a fresh message (done once per message, shared by every
// stream).
void BM_EncodeGrpcEvent(benchmark::State& state) {
  const std::string payload = Payload(static_cast<size_t>(state.range(0)));
  uint64_t seq = 0;
  for (auto _ : state) {
    Message m("bench.0", "", payload, ++seq);
    benchmark::DoNotOptimize(grpc_frontend::EncodeMessage(m));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EncodeGrpcEvent)->Arg(100)->Arg(4096);

// The cache lookup every stream after the first pays.
void BM_EncodeGrpcEventCached(benchmark::State& state) {
  Message m("bench.0", "", Payload(100), 1);
  grpc_frontend::EncodeMessage(m);
  for (auto _ : state) {
    ::grpc::ByteBuffer copy = grpc_frontend::EncodeMessage(m);  // a reference, not the bytes
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_EncodeGrpcEventCached);

#ifdef BRIDGE_BENCH_HAVE_WS
// The WebSocket JSON frame of a fresh message (once per message, shared by every socket).
void BM_WsMessageFrame(benchmark::State& state) {
  const std::string payload = Payload(static_cast<size_t>(state.range(0)));
  uint64_t seq = 0;
  for (auto _ : state) {
    Message m("bench.0", "", payload, ++seq);
    benchmark::DoNotOptimize(ws::MessageFrame(m));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_WsMessageFrame)->Arg(100)->Arg(4096);
#endif

}  // namespace
}  // namespace bridge::hub

int main(int argc, char** argv) {
  bridge::SetLogLevel(bridge::LogLevel::kWarning);
  // Debian builds abseil with its mutex deadlock detector on; BRIDGE_BENCH_NO_DEADLOCK_CHECK=1
  // measures the hot path without it (what a server that turns it off would pay).
  if (const char* v = std::getenv("BRIDGE_BENCH_NO_DEADLOCK_CHECK"); v != nullptr && *v == '1') {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
