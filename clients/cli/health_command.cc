#include "clients/cli/health_command.h"

#include <chrono>
#include <memory>
#include <string>

#include "clients/cli/connection.h"
#include "clients/cli/event_formatter.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"

namespace bridgectl {
namespace {

using grpc::health::v1::HealthCheckResponse;

int Report(const Options& options, HealthCheckResponse::ServingStatus status, std::ostream& out) {
  out << EventFormatter(options.json)
             .Health(options.service, HealthCheckResponse::ServingStatus_Name(status))
      << '\n';
  return status == HealthCheckResponse::SERVING ? kExitOk : kExitError;
}

}  // namespace

int RunHealth(const Options& options, StopSignal& stop, std::ostream& out, std::ostream& err) {
  std::unique_ptr<grpc::health::v1::Health::Stub> stub =
      grpc::health::v1::Health::NewStub(ConnectToBridge(options.addr));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(options.service);
  grpc::ClientContext context;
  // The health service asks for no token; sending the one given does no harm.
  AddAuthorization(options.token, &context);
  if (!options.watch) {
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoNanoseconds(options.timeout));
  }
  stop.SetCall(&context);

  grpc::Status status;
  HealthCheckResponse response;
  HealthCheckResponse::ServingStatus last = HealthCheckResponse::UNKNOWN;
  bool answered = false;
  if (options.watch) {
    // Every change is a line; the stream ends only when stopped or when the server goes.
    std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader =
        stub->Watch(&context, request);
    while (reader->Read(&response)) {
      Report(options, response.status(), out);
      out.flush();
    }
    status = reader->Finish();
    stop.ClearCall();
    if (stop.stopped()) return kExitOk;
    err << "bridgectl: " << Describe(status) << '\n';
    return kExitError;
  }
  if (!options.wait) {
    status = stub->Check(&context, request, &response);
    last = response.status();
    answered = status.ok();
  } else {
    // Waits for the server to start listening as well, within the deadline.
    context.set_wait_for_ready(true);
    std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader =
        stub->Watch(&context, request);
    while (reader->Read(&response)) {
      answered = true;
      last = response.status();
      if (last == HealthCheckResponse::SERVING) {
        context.TryCancel();
        break;
      }
    }
    status = reader->Finish();
    if (last == HealthCheckResponse::SERVING) status = grpc::Status::OK;
  }
  stop.ClearCall();
  if (stop.stopped()) return kExitOk;
  if (!status.ok()) {
    // Still print the last status a --wait saw, e.g. NOT_SERVING until the deadline.
    if (answered) Report(options, last, out);
    err << "bridgectl: " << Describe(status) << '\n';
    return kExitError;
  }
  return Report(options, last, out);
}

}  // namespace bridgectl
