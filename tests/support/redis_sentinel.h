#ifndef BRIDGE_TESTS_SUPPORT_REDIS_SENTINEL_H_
#define BRIDGE_TESTS_SUPPORT_REDIS_SENTINEL_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/redis_server.h"

namespace bridge::testing {

// A real Redis Sentinel setup for one test: a master (node 0), its replica (node 1,
// `replicaof`) and three `redis-server --sentinel` processes monitoring them as
// kMasterName, on free loopback ports, each in a temporary directory. The timeouts are
// short (down after 1 s, failover timeout 3 s) so that a failover takes a few seconds.
// Every process dies with the test. The constructor returns once each sentinel knows the
// replica and the other two sentinels, so that a failover can be voted at once.
class RedisSentinelSetup {
 public:
  static constexpr char kMasterName[] = "mymaster";

  struct Options {
    // `requirepass` of the master and the replica (the replica's `masterauth` and the
    // sentinels' `auth-pass` follow); empty for none.
    std::string master_password;
    // `requirepass` of the sentinels (and the `sentinel-pass` they use with each other).
    std::string sentinel_password;
  };

  explicit RedisSentinelSetup(Options options = {});
  ~RedisSentinelSetup();
  RedisSentinelSetup(const RedisSentinelSetup&) = delete;
  RedisSentinelSetup& operator=(const RedisSentinelSetup&) = delete;

  // Node 0 starts as the master, node 1 as its replica.
  RedisServer& node(int i) { return *nodes_[i]; }
  int sentinel_port(int i) const { return sentinels_[i].port; }
  // redis+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/mymaster, with the
  // passwords when there are.
  std::string url() const;

  // One command on sentinel `i`, on a fresh connection; the reply as RedisServer::Command
  // gives it.
  absl::StatusOr<std::string> SentinelCommand(int i, const std::vector<std::string>& argv) const;
  // The port of the master sentinel `i` names, or -1.
  int MasterPortBySentinel(int i) const;
  // "master" or "slave", as node `i` answers ROLE; empty when it does not answer.
  std::string Role(int i) const;
  // Waits until every sentinel still running names node `i` and node `i` says it is master.
  bool WaitForMaster(int i, absl::Duration timeout = absl::Seconds(30)) const;
  // SENTINEL FAILOVER: a failover without agreement, the old master kept running (it is
  // made a replica of the new one some seconds later).
  absl::Status ForceFailover() const;

 private:
  struct Sentinel {
    std::string dir;
    int port = 0;
    pid_t pid = -1;
  };

  void StartSentinel(Sentinel& sentinel, int master_port);

  const Options options_;
  std::unique_ptr<RedisServer> nodes_[2];
  std::vector<Sentinel> sentinels_;
};

}  // namespace bridge::testing

#endif  // BRIDGE_TESTS_SUPPORT_REDIS_SENTINEL_H_
