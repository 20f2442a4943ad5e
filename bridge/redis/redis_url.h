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
//   redis+sentinel://[user:password@]s1[:26379],s2[:26379]/master[/db]
//       [?sentinel_user=u&sentinel_password=p]
//   redis+cluster://[user:password@]host[:6379],host[:6379],...
// In the Sentinel form the sentinels are asked where `master` is; user, password and db
// are the master's, the query's credentials the sentinels' own (when they require AUTH).
// The cluster form names a Redis Cluster by a few of its nodes (seeds; the rest is
// discovered). User and password are percent-decoded. A plain value type; copy it freely.
struct RedisUrl {
  enum class Transport { kTcp, kUnix };
  // kSingle: one server at host:port (or socket_path); kSentinel: the master the sentinels
  // in `nodes` name `master_name`; kCluster: the cluster `nodes` belong to.
  enum class Mode { kSingle, kSentinel, kCluster };
  struct Node {
    std::string host;  // IPv6 literals without brackets.
    int port = 6379;
    bool operator==(const Node& other) const { return host == other.host && port == other.port; }
  };

  Mode mode = Mode::kSingle;

  Transport transport = Transport::kTcp;
  std::string host;         // kTcp only; IPv6 literals without brackets.
  int port = 6379;          // kTcp only.
  std::string socket_path;  // kUnix only.
  std::string user;         // Empty: AUTH with the password alone (Redis < 6 style).
  std::string password;     // Empty: no AUTH.
  int db = 0;
  // kSentinel: the sentinels; kCluster: the seed nodes, in the URL's order (host and port
  // above are the first).
  std::vector<Node> nodes;
  // kSentinel only.
  std::string master_name;
  std::string sentinel_user;
  std::string sentinel_password;  // Empty: the sentinels get no AUTH.

  // INVALID_ARGUMENT, saying what is wrong, for anything else.
  static absl::StatusOr<RedisUrl> Parse(std::string_view url);

  bool is_unix() const { return transport == Transport::kUnix; }
  bool is_sentinel() const { return mode == Mode::kSentinel; }
  bool is_cluster() const { return mode == Mode::kCluster; }
  // The single server at `node` with this URL's user, password and db: the master once a
  // sentinel named it.
  RedisUrl AtNode(const Node& node) const;
  // The sentinel at `node`, with the sentinels' credentials and no db.
  RedisUrl SentinelAt(const Node& node) const;
  // The URL with the password replaced by "***", for logs.
  std::string Redacted() const;
};

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_REDIS_URL_H_
