#ifndef BRIDGE_COMMON_LOG_H_
#define BRIDGE_COMMON_LOG_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bridge/common/log_rate_limiter.h"

namespace bridge {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Sets the lowest level that is written; the default is kInfo.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
// Writes one line to stderr: a UTC timestamp, the level, and the text.
void LogLine(LogLevel level, std::string_view text);

// Writes the line if `source` admits it; the first line after some were refused says how
// many.
template <typename... Args>
void Log(LogRateLimiter& source, LogLevel level, const absl::FormatSpec<Args...>& format,
         const Args&... args) {
  if (!LogEnabled(level)) return;
  int64_t suppressed = 0;
  if (!source.Admit(absl::Now(), &suppressed)) return;
  std::string text = absl::StrFormat(format, args...);
  if (suppressed > 0) absl::StrAppend(&text, " [", suppressed, " lines like this suppressed]");
  LogLine(level, text);
}

}  // namespace bridge

// Logs a line (printf-style, checked at compile time). Each call site has its own
// LogRateLimiter: at most 10 lines every 10 s, so that a line written per refused call or
// per reset socket cannot flood the log.
#define BRIDGE_LOG(level, ...)                                                          \
  do {                                                                                  \
    /* Never destroyed: threads may still log while the process exits. */               \
    static ::bridge::LogRateLimiter& bridge_log_source = *new ::bridge::LogRateLimiter; \
    ::bridge::Log(bridge_log_source, ::bridge::LogLevel::k##level, __VA_ARGS__);        \
  } while (false)

#endif  // BRIDGE_COMMON_LOG_H_
