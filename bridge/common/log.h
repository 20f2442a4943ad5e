#ifndef BRIDGE_COMMON_LOG_H_
#define BRIDGE_COMMON_LOG_H_

#include <string_view>

#include "absl/strings/str_format.h"

namespace bridge {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Sets the lowest level that is written; the default is kInfo.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
// Writes one line to stderr: a UTC timestamp, the level, and the text.
void LogLine(LogLevel level, std::string_view text);

template <typename... Args>
void Log(LogLevel level, const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (LogEnabled(level)) LogLine(level, absl::StrFormat(format, args...));
}

}  // namespace bridge

#define BRIDGE_LOG(level, ...) ::bridge::Log(::bridge::LogLevel::k##level, __VA_ARGS__)

#endif  // BRIDGE_COMMON_LOG_H_
