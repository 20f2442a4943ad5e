#include "clients/cli/connection.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace bridgectl {

std::shared_ptr<grpc::Channel> ConnectToBridge(const std::string& addr) {
  grpc::ChannelArguments args;
  // A Redis message may be up to 512 MiB; the server decides what it lets through.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // The channel's own reconnection backoff (1s to 120s by default) would otherwise hold
  // back subscribe --reconnect long after the server is back; match its 250ms to 5s.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
}

void AddAuthorization(const std::string& token, grpc::ClientContext* context) {
  if (!token.empty()) context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::DO_NOT_USE:
      break;
  }
  return "UNKNOWN_CODE";
}

std::string Describe(const grpc::Status& status) {
  if (status.error_message().empty()) return StatusCodeName(status.error_code());
  return absl::StrCat(StatusCodeName(status.error_code()), ": ", status.error_message());
}

void ReportCallError(const grpc::Status& status, const std::string& token, std::ostream& err) {
  err << "bridgectl: " << Describe(status) << '\n';
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED && token.empty()) {
    err << "bridgectl: no token was sent: give it with --token TOKEN or $BRIDGE_TOKEN\n";
  }
}

}  // namespace bridgectl
