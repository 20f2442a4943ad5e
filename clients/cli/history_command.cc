#include "clients/cli/history_command.h"

#include <chrono>
#include <memory>

#include "bridge/v1/bridge.grpc.pb.h"
#include "clients/cli/connection.h"
#include "clients/cli/event_formatter.h"
#include "grpcpp/client_context.h"

namespace bridgectl {

int RunHistory(const Options& options, StopSignal& stop, std::ostream& out, std::ostream& err) {
  bridge::v1::HistoryRequest request;
  request.set_channel(options.channel);
  request.set_limit(options.limit);
  if (options.since_offset) {
    request.mutable_since()->set_offset(*options.since_offset);
    request.mutable_since()->set_epoch(options.since_epoch);
  }
  std::unique_ptr<bridge::v1::Bridge::Stub> stub =
      bridge::v1::Bridge::NewStub(ConnectToBridge(options.addr));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoNanoseconds(options.timeout));
  AddAuthorization(options.token, &context);
  bridge::v1::HistoryResponse response;
  stop.SetCall(&context);
  const grpc::Status status = stub->History(&context, request, &response);
  stop.ClearCall();
  if (stop.stopped()) return kExitOk;
  if (!status.ok()) {
    ReportCallError(status, options.token, err);
    return kExitError;
  }
  out << EventFormatter(options.json).History(options.channel, response) << '\n';
  return kExitOk;
}

}  // namespace bridgectl
