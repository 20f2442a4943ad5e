#ifndef BRIDGE_REDIS_REDIS_URL_H_
#define BRIDGE_REDIS_REDIS_URL_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace bridge::redis {

// Where and how to reach one Redis server, parsed from a URL:
//   redis://[user:password@]host[:port][/db]     (also redis://:password@host...)
//   unix:///path/to/redis.sock[?db=N]
//   /path/to/redis.sock                          (a plain absolute path)
// or a Redis Cluster, from its seed nodes (any few of its nodes; the rest is discovered):
//   redis+cluster://[user:password@]host[:port],host[:port],...
// User and password are percent-decoded. A plain value type; copy it freely.
struct RedisUrl {
  enum class Transport { kTcp, kUnix };
  // What the URL names: one server, or a cluster through its seed nodes.
  enum class Mode { kSingle, kCluster };
  struct Node {
    std::string host;  // IPv6 literals without brackets.
    int port = 6379;
    friend bool operator==(const Node& a, const Node& b) {
      return a.host == b.host && a.port == b.port;
    }
  };

  Transport transport = Transport::kTcp;
  std::string host;         // kTcp only; IPv6 literals without brackets.
  int port = 6379;          // kTcp only.
  std::string socket_path;  // kUnix only.
  std::string user;         // Empty: AUTH with the password alone (Redis < 6 style).
  std::string password;     // Empty: no AUTH.
  int db = 0;
  Mode mode = Mode::kSingle;
  // kCluster: the seed nodes, in the URL's order; host and port above are the first.
  std::vector<Node> nodes;

  // INVALID_ARGUMENT, saying what is wrong, for anything else.
  static absl::StatusOr<RedisUrl> Parse(std::string_view url);

  bool is_unix() const { return transport == Transport::kUnix; }
  bool is_cluster() const { return mode == Mode::kCluster; }
  // The URL with the password replaced by "***", for logs.
  std::string Redacted() const;
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_REDIS_URL_H_
