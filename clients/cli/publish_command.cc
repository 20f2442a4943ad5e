#include "clients/cli/publish_command.h"

#include <chrono>
#include <iterator>
#include <memory>
#include <string>

#include "bridge/v1/bridge.grpc.pb.h"
#include "clients/cli/connection.h"
#include "clients/cli/event_formatter.h"
#include "grpcpp/client_context.h"

namespace bridgectl {

int RunPublish(const Options& options, StopSignal& stop, std::istream& in, std::ostream& out,
               std::ostream& err) {
  bridge::v1::PublishRequest request;
  request.set_channel(options.channel);
  if (options.message) {
    request.set_payload(*options.message);
  } else {
    request.set_payload(std::string(std::istreambuf_iterator<char>(in), {}));
    if (in.bad()) {
      err << "bridgectl: cannot read the message from standard input\n";
      return kExitError;
    }
  }
  std::unique_ptr<bridge::v1::Bridge::Stub> stub =
      bridge::v1::Bridge::NewStub(ConnectToBridge(options.addr));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoNanoseconds(options.timeout));
  bridge::v1::PublishResponse response;
  stop.SetCall(&context);
  const grpc::Status status = stub->Publish(&context, request, &response);
  stop.ClearCall();
  if (stop.stopped()) return kExitOk;
  if (!status.ok()) {
    err << "bridgectl: " << Describe(status) << '\n';
    return kExitError;
  }
  out << EventFormatter(options.json).Published(options.channel, response.receivers()) << '\n';
  return kExitOk;
}

}  // namespace bridgectl
