#include "clients/cli/subscribe_command.h"

#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bridge/v1/bridge.grpc.pb.h"
#include "clients/cli/backoff.h"
#include "clients/cli/connection.h"
#include "clients/cli/event_formatter.h"
#include "clients/cli/resume_positions.h"
#include "grpcpp/client_context.h"

namespace bridgectl {
namespace {

using bridge::v1::Event;
using bridge::v1::EventBatch;

// Whether a new stream may succeed where this one failed. Errors about the request
// itself (bad channel name, a token missing or unknown, a channel the token or Bridge's
// Redis user may not subscribe to, unknown method) will fail again the same way.
bool Retriable(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNIMPLEMENTED:
      return false;
    default:
      return true;
  }
}

// A subscription's identity across streams: the channel or pattern it confirmed.
std::string TargetKey(const bridge::v1::Subscribed& s) {
  return s.target_case() == bridge::v1::Subscribed::kPattern ? absl::StrCat("p", s.pattern())
                                                             : absl::StrCat("c", s.channel());
}

// What the client tells the user when a stream was lost and a new one is confirmed:
// whatever was published in between did not reach it.
Event ReconnectGap(const bridge::v1::Subscribed& s) {
  Event gap;
  if (s.target_case() == bridge::v1::Subscribed::kPattern) {
    gap.mutable_gap()->set_pattern(s.pattern());
  } else {
    gap.mutable_gap()->set_channel(s.channel());
  }
  gap.mutable_gap()->set_reason("bridge_reconnect");
  return gap;
}

}  // namespace

bool FallBackToSubscribe(const grpc::Status& status, bool any_event) {
  // A server without the method answers before sending anything; an UNIMPLEMENTED after
  // events would be the server's word on something else.
  return status.error_code() == grpc::StatusCode::UNIMPLEMENTED && !any_event;
}

int RunSubscribe(const Options& options, StopSignal& stop, std::ostream& out, std::ostream& err) {
  const EventFormatter formatter(options.json);
  std::unique_ptr<bridge::v1::Bridge::Stub> stub =
      bridge::v1::Bridge::NewStub(ConnectToBridge(options.addr));
  // Where each durable channel's stream left off: what a new stream asks to resume.
  ResumePositions positions;

  // Capped low: bridgectl is mostly watched by a person, who wants it back soon after the
  // server is (a fleet of services would rather cap higher, as the examples do).
  Backoff backoff(absl::Milliseconds(250), absl::Seconds(5));
  // Subscriptions some earlier stream confirmed: a new confirmation means a gap.
  std::set<std::string> confirmed_before;
  long long messages = 0;
  // SubscribeBatched until the server says it has no such method (a Bridge older than
  // it), then Subscribe: the same events, one gRPC message each.
  bool batched = true;
  for (;;) {
    grpc::ClientContext context;
    // With --reconnect, a call made while the server is away waits for the channel to
    // connect again (on the channel's backoff, see ConnectToBridge) instead of failing at
    // once: failing fast while the channel sits out its backoff would only grow ours.
    context.set_wait_for_ready(options.reconnect);
    // Every stream, the reconnected ones too.
    AddAuthorization(options.token, &context);
    stop.SetCall(&context);
    const bridge::v1::SubscribeRequest request =
        positions.Request(options.channels, options.patterns);
    std::set<std::string> confirmed;
    bool enough = false;
    bool any_event = false;
    // Prints one event; false once --count messages have come.
    auto handle = [&](const Event& event) {
      any_event = true;
      out << formatter.Format(event) << '\n';
      if (event.has_subscribed()) {
        backoff.Reset();
        std::string key = TargetKey(event.subscribed());
        // A resumed channel loses nothing: the server recovers what it missed, or says
        // with a history_lost gap what it cannot.
        if (confirmed_before.contains(key) &&
            !request.resume().contains(event.subscribed().channel())) {
          out << formatter.Format(ReconnectGap(event.subscribed())) << '\n';
        }
        confirmed.insert(std::move(key));
      } else if (event.has_message()) {
        positions.Observe(event.message());
        if (options.count > 0 && ++messages >= options.count) {
          enough = true;
          context.TryCancel();
        }
      }
      return !enough;
    };
    grpc::Status status;
    if (batched) {
      std::unique_ptr<grpc::ClientReader<EventBatch>> reader =
          stub->SubscribeBatched(&context, request);
      EventBatch batch;
      while (!enough && reader->Read(&batch)) {
        for (const Event& event : batch.events()) {
          if (!handle(event)) break;
        }
        out.flush();
      }
      status = reader->Finish();
    } else {
      std::unique_ptr<grpc::ClientReader<Event>> reader = stub->Subscribe(&context, request);
      Event event;
      while (!enough && reader->Read(&event)) {
        handle(event);
        out.flush();
      }
      status = reader->Finish();
    }
    stop.ClearCall();
    if (enough || stop.stopped()) return kExitOk;
    if (batched && FallBackToSubscribe(status, any_event)) {
      batched = false;
      continue;
    }
    if (status.ok()) {
      err << "bridgectl: the server ended the stream\n";
      if (!options.reconnect) return kExitOk;
    } else if (!options.reconnect || !Retriable(status) ||
               // Refused outright (too many subscriptions) rather than cut off later as a
               // slow consumer: asking again would be refused again.
               (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && confirmed.empty())) {
      ReportCallError(status, options.token, err);
      return kExitError;
    }
    confirmed_before.merge(confirmed);
    const absl::Duration delay = backoff.Next();
    err << "bridgectl: " << (status.ok() ? "stream ended" : Describe(status))
        << "; reconnecting in " << absl::FormatDuration(absl::Trunc(delay, absl::Milliseconds(10)))
        << '\n';
    if (stop.SleepFor(delay)) return kExitOk;
  }
}

}  // namespace bridgectl
