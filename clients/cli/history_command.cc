#include "clients/cli/history_command.h"

#include "bridge/v1/bridge.grpc.pb.h"
#include "clients/cli/event_formatter.h"
#include "clients/cli/unary_call.h"

namespace bridgectl {

int RunHistory(const Options& options, StopSignal& stop, std::ostream& out, std::ostream& err) {
  bridge::v1::HistoryRequest request;
  request.set_channel(options.channel);
  request.set_limit(options.limit);
  if (options.since_offset) {
    request.mutable_since()->set_offset(*options.since_offset);
    request.mutable_since()->set_epoch(options.since_epoch);
  }
  return RunUnaryCall(options, stop, out, err, &bridge::v1::Bridge::Stub::History, request,
                      [&](const bridge::v1::HistoryResponse& response) {
                        return EventFormatter(options.json).History(options.channel, response);
                      });
}

}  // namespace bridgectl
