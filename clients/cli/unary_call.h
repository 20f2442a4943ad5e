#ifndef BRIDGE_CLIENTS_CLI_UNARY_CALL_H_
#define BRIDGE_CLIENTS_CLI_UNARY_CALL_H_

#include <chrono>
#include <memory>
#include <ostream>

#include "absl/time/time.h"
#include "bridge/v1/bridge.grpc.pb.h"
#include "clients/cli/command_line.h"
#include "clients/cli/connection.h"
#include "clients/cli/stop_signal.h"
#include "grpcpp/client_context.h"

namespace bridgectl {

// Makes one unary call of bridge.v1.Bridge (`method`, e.g. &Stub::Publish) as every
// one-shot command does: to options.addr, within options.timeout, with options.token; a
// stop signal cancels it. Prints `format(response)` and returns kExitOk, or reports the
// failure and returns kExitError (kExitOk when stopped).
template <typename Request, typename Response, typename Format>
int RunUnaryCall(const Options& options, StopSignal& stop, std::ostream& out, std::ostream& err,
                 grpc::Status (bridge::v1::Bridge::Stub::*method)(grpc::ClientContext*,
                                                                  const Request&, Response*),
                 const Request& request, Format format) {
  std::unique_ptr<bridge::v1::Bridge::Stub> stub =
      bridge::v1::Bridge::NewStub(ConnectToBridge(options.addr));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoNanoseconds(options.timeout));
  AddAuthorization(options.token, &context);
  Response response;
  stop.SetCall(&context);
  const grpc::Status status = ((*stub).*method)(&context, request, &response);
  stop.ClearCall();
  if (stop.stopped()) return kExitOk;
  if (!status.ok()) {
    ReportCallError(status, options.token, err);
    return kExitError;
  }
  out << format(response) << '\n';
  return kExitOk;
}

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_UNARY_CALL_H_
