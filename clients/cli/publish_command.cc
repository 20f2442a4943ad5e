#include "clients/cli/publish_command.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "bridge/v1/bridge.grpc.pb.h"
#include "clients/cli/connection.h"
#include "clients/cli/event_formatter.h"
#include "clients/cli/unary_call.h"

namespace bridgectl {
namespace {

enum class ReadResult { kDone, kStopped, kFailed };

// Reads `fd` to its end into `data`, unless a stop signal comes first. StopSignal keeps
// SIGINT and SIGTERM blocked, so they would not interrupt a plain read(2): wait for the
// input and the signal together.
ReadResult ReadAll(int fd, const StopSignal& stop, std::string* data, std::string* error) {
  char buffer[65536];
  for (;;) {
    pollfd fds[2] = {{.fd = fd, .events = POLLIN, .revents = 0},
                     {.fd = stop.wake_fd(), .events = POLLIN, .revents = 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      *error = std::strerror(errno);
      return ReadResult::kFailed;
    }
    if (fds[1].revents != 0) return ReadResult::kStopped;
    if ((fds[0].revents & POLLNVAL) != 0) {
      *error = "not open";
      return ReadResult::kFailed;
    }
    if (fds[0].revents == 0) continue;
    // Readable, at its end, or in error: read(2) tells which.
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      data->append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      return ReadResult::kDone;
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      *error = std::strerror(errno);
      return ReadResult::kFailed;
    }
  }
}

}  // namespace

int RunPublish(const Options& options, StopSignal& stop, int in_fd, std::ostream& out,
               std::ostream& err) {
  bridge::v1::PublishRequest request;
  request.set_channel(options.channel);
  request.set_idempotency_key(options.key);
  if (options.message) {
    request.set_payload(*options.message);
  } else {
    std::string payload;
    std::string error;
    // At a terminal, say what is awaited rather than seem to hang.
    if (isatty(in_fd))
      err << "bridgectl: type the message, then Ctrl-D (Ctrl-C cancels)\n" << std::flush;
    switch (ReadAll(in_fd, stop, &payload, &error)) {
      case ReadResult::kDone:
        break;
      case ReadResult::kStopped:
        return kExitOk;
      case ReadResult::kFailed:
        err << "bridgectl: cannot read the message from standard input: " << error << '\n';
        return kExitError;
    }
    request.set_payload(std::move(payload));
  }
  return RunUnaryCall(options, stop, out, err, &bridge::v1::Bridge::Stub::Publish, request,
                      [&](const bridge::v1::PublishResponse& response) {
                        return EventFormatter(options.json).Published(options.channel, response);
                      });
}

}  // namespace bridgectl
