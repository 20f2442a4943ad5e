#include "bridge/common/protobuf_log.h"

#include <google/protobuf/stubs/logging.h>

#include <string>

#include "bridge/common/log.h"

namespace bridge {
namespace {

void OnProtobufLog(google::protobuf::LogLevel level, const char* filename, int line,
                   const std::string& message) {
  // One source for every line of libprotobuf: they come from a handful of places, all
  // driven by what clients send.
  static LogRateLimiter& source = *new LogRateLimiter;  // Never destroyed, as in BRIDGE_LOG.
  LogLevel ours = LogLevel::kError;
  if (level == google::protobuf::LOGLEVEL_INFO) ours = LogLevel::kInfo;
  if (level == google::protobuf::LOGLEVEL_WARNING) ours = LogLevel::kWarning;
  Log(source, ours, "libprotobuf %s:%d: %s", filename, line, message);
}

}  // namespace

void RouteProtobufLogs() {
  // SetLogHandler is not thread-safe: set once, however many Apps a process starts.
  static const bool routed = (google::protobuf::SetLogHandler(&OnProtobufLog), true);
  (void)routed;
}

}  // namespace bridge
