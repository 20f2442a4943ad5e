#ifndef BRIDGE_TESTS_SUPPORT_REDIS_CLUSTER_H_
#define BRIDGE_TESTS_SUPPORT_REDIS_CLUSTER_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace bridge::testing {

// A real Redis Cluster for one test: six `redis-server --cluster-enabled yes` processes
// on free loopback ports, each in its own temporary directory, joined by
// `redis-cli --cluster create ... --cluster-replicas 1` into three masters with one
// replica each. The constructor returns once every node reports cluster_state:ok; the
// destructor kills every node and removes the directories.
//
// The nodes fail over quickly (cluster-node-timeout 1 s) and keep serving the slots they
// still own while another shard is down (cluster-require-full-coverage no), so a test can
// kill a master and watch the others carry on. Not thread-safe.
class RedisCluster {
 public:
  // Throws std::runtime_error when the cluster cannot be built in time.
  RedisCluster();
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  // Every node's port, killed ones included.
  std::vector<int> ports() const;
  // redis+cluster://127.0.0.1:p1,127.0.0.1:p2,... over every node started.
  std::string url() const;

  // Runs one command on a fresh connection to the node on `port`; the reply as text
  // (integers in decimal, arrays joined with '\n'), or an error with Redis' words.
  absl::StatusOr<std::string> Command(int port, const std::vector<std::string>& argv) const;

  // CLUSTER KEYSLOT name, asked of a live node.
  int KeySlot(const std::string& name) const;
  // The port of the master serving `slot` as a live node sees it (CLUSTER SLOTS), or -1.
  int MasterOfSlot(int slot) const;
  // The ports of the live masters that serve slots, ascending.
  std::vector<int> Masters() const;
  // The port of a live replica of the master on `master_port`, or -1.
  int ReplicaOf(int master_port) const;
  // The node id (CLUSTER MYID) of the node on `port`.
  std::string NodeId(int port) const;

  // Migrates `slot` from its master to the master on `to_port`, as an operator would
  // (CLUSTER SETSLOT IMPORTING on the target, MIGRATING on the source, then NODE on both;
  // the slot holds no keys to MIGRATE), and waits until every live node agrees.
  absl::Status MoveSlot(int slot, int to_port);

  // SIGKILL the node on `port`, as a crash would, and wait until it is gone.
  void Kill(int port);
  bool alive(int port) const;
  // SIGSTOP the node on `port`: it freezes with its connections open (the kernel still
  // accepts new ones into the backlog), as a hung Redis would. Resume() is SIGCONT.
  void Pause(int port);
  void Resume(int port);

  // PUBSUB SHARDNUMSUB channel on one node: the clients it counts as shard subscribers.
  long long ShardNumSub(int port, const std::string& channel) const;
  // Waits (bounded) until every live node reports cluster_state:ok and agrees on which
  // master serves each slot.
  bool WaitForHealthy(absl::Duration timeout = absl::Seconds(30)) const;

 private:
  struct Node {
    int port = 0;
    // The cluster bus; Redis' default (port + 10000) may lie past 65535.
    int bus_port = 0;
    pid_t pid = -1;
    std::string dir;
  };

  void Build();
  void StartNode(Node& node);
  // Kills every node and removes the directories.
  void Destroy();
  int AnyLivePort() const;

  std::vector<Node> nodes_;
};

}  // namespace bridge::testing

#endif  // BRIDGE_TESTS_SUPPORT_REDIS_CLUSTER_H_
