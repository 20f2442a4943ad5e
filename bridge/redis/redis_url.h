#ifndef BRIDGE_REDIS_REDIS_URL_H_
#define BRIDGE_REDIS_REDIS_URL_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace bridge::redis {

// Where and how to reach one Redis server, parsed from a URL:
//   redis://[user:password@]host[:port][/db]     (also redis://:password@host...)
//   unix:///path/to/redis.sock[?db=N]
//   /path/to/redis.sock                          (a plain absolute path)
// User and password are percent-decoded. A plain value type; copy it freely.
struct RedisUrl {
  enum class Transport { kTcp, kUnix };

  Transport transport = Transport::kTcp;
  std::string host;         // kTcp only; IPv6 literals without brackets.
  int port = 6379;          // kTcp only.
  std::string socket_path;  // kUnix only.
  std::string user;         // Empty: AUTH with the password alone (Redis < 6 style).
  std::string password;     // Empty: no AUTH.
  int db = 0;

  // INVALID_ARGUMENT, saying what is wrong, for anything else.
  static absl::StatusOr<RedisUrl> Parse(std::string_view url);

  bool is_unix() const { return transport == Transport::kUnix; }
  // The URL with the password replaced by "***", for logs.
  std::string Redacted() const;
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_REDIS_URL_H_
