#include "tests/support/redis_cluster.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/support/redis_server.h"

namespace bridge::testing {
namespace {

constexpr int kNodes = 6;
constexpr int kSlots = 16384;

// The slot ranges a node's CLUSTER SLOTS gives, as start -> (end, master port); empty
// when the node does not answer.
std::map<int, std::pair<int, int>> SlotMap(int port) {
  std::map<int, std::pair<int, int>> out;
  RedisReplyPtr r = RedisCommandReply(port, {"CLUSTER", "SLOTS"});
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return out;
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* range = r->element[i];
    if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) continue;
    const redisReply* master = range->element[2];
    if (master->type != REDIS_REPLY_ARRAY || master->elements < 2) continue;
    out[static_cast<int>(range->element[0]->integer)] = {
        static_cast<int>(range->element[1]->integer),
        static_cast<int>(master->element[1]->integer)};
  }
  return out;
}

// Runs a program to its end with its output discarded; its exit status, or -1.
int RunQuiet(const std::vector<std::string>& argv) {
  const pid_t pid = SpawnQuiet(argv);
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace

RedisCluster::RedisCluster() {
  try {
    Build();
  } catch (...) {
    // No destructor runs for a constructor that throws.
    Destroy();
    throw;
  }
}

void RedisCluster::Build() {
  nodes_.resize(kNodes);
  for (Node& node : nodes_) {
    char tmpl[] = "/tmp/bridge-cluster-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    node.dir = tmpl;
    node.port = FreePort();
    node.bus_port = FreePort();
    StartNode(node);
  }
  std::vector<std::string> create = {"redis-cli", "--cluster", "create"};
  for (const Node& node : nodes_) create.push_back(absl::StrCat("127.0.0.1:", node.port));
  for (const char* arg : {"--cluster-replicas", "1", "--cluster-yes"}) create.push_back(arg);
  if (RunQuiet(create) != 0) throw std::runtime_error("redis-cli --cluster create failed");
  if (!WaitForHealthy()) throw std::runtime_error("the cluster did not reach cluster_state:ok");
  // Every master has its replica attached before a test may kill one.
  const bool replicated = WaitFor(
      [&] {
        for (int master : Masters()) {
          if (ReplicaOf(master) < 0) return false;
        }
        return Masters().size() == kNodes / 2;
      },
      absl::Seconds(30));
  if (!replicated) throw std::runtime_error("the cluster's replicas did not attach in time");
}

RedisCluster::~RedisCluster() { Destroy(); }

void RedisCluster::Destroy() {
  for (Node& node : nodes_) {
    if (node.pid > 0) {
      ::kill(node.pid, SIGKILL);
      ::waitpid(node.pid, nullptr, 0);
      node.pid = -1;
    }
    std::error_code ec;
    std::filesystem::remove_all(node.dir, ec);
  }
}

void RedisCluster::StartNode(Node& node) {
  const std::string conf_path = node.dir + "/redis.conf";
  {
    std::ofstream conf(conf_path);
    conf << "port " << node.port << "\nbind 127.0.0.1\ndir " << node.dir
         << "\nsave \"\"\nappendonly no\ndaemonize no\nlogfile " << node.dir
         << "/redis.log\ncluster-enabled yes\ncluster-config-file nodes.conf\ncluster-port "
         << node.bus_port << "\n"
         << "cluster-node-timeout 1000\ncluster-require-full-coverage no\n"
         << "cluster-replica-validity-factor 0\n";
  }
  const pid_t pid = SpawnQuiet({"redis-server", conf_path});
  node.pid = pid;
  const bool up = WaitFor([&] {
    int status;
    if (::waitpid(node.pid, &status, WNOHANG) == node.pid) {
      node.pid = -1;
      throw std::runtime_error("redis-server exited at start; see " + node.dir + "/redis.log");
    }
    RedisReplyPtr r = RedisCommandReply(node.port, {"PING"});
    return r != nullptr && r->type == REDIS_REPLY_STATUS;
  });
  if (!up) throw std::runtime_error("a cluster node did not answer PING in time");
}

std::vector<int> RedisCluster::ports() const {
  std::vector<int> out;
  for (const Node& node : nodes_) out.push_back(node.port);
  return out;
}

std::string RedisCluster::url() const {
  std::vector<std::string> hosts;
  for (const Node& node : nodes_) hosts.push_back(absl::StrCat("127.0.0.1:", node.port));
  return absl::StrCat("redis+cluster://", absl::StrJoin(hosts, ","));
}

absl::StatusOr<std::string> RedisCluster::Command(int port,
                                                  const std::vector<std::string>& argv) const {
  return RedisCommandAt(port, argv);
}

int RedisCluster::AnyLivePort() const {
  for (const Node& node : nodes_) {
    if (node.pid > 0) return node.port;
  }
  throw std::runtime_error("no live cluster node");
}

int RedisCluster::KeySlot(const std::string& name) const {
  absl::StatusOr<std::string> r = Command(AnyLivePort(), {"CLUSTER", "KEYSLOT", name});
  return r.ok() ? std::stoi(*r) : -1;
}

int RedisCluster::MasterOfSlot(int slot) const {
  for (const auto& [start, range] : SlotMap(AnyLivePort())) {
    if (slot >= start && slot <= range.first) return range.second;
  }
  return -1;
}

std::vector<int> RedisCluster::Masters() const {
  std::vector<int> out;
  for (const auto& [start, range] : SlotMap(AnyLivePort())) {
    if (alive(range.second) && std::find(out.begin(), out.end(), range.second) == out.end()) {
      out.push_back(range.second);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

int RedisCluster::ReplicaOf(int master_port) const {
  const std::string master_id = NodeId(master_port);
  if (master_id.empty()) return -1;
  for (const Node& node : nodes_) {
    if (node.pid <= 0 || node.port == master_port) continue;
    // ROLE on a replica: slave, master ip, master port, link state, offset.
    RedisReplyPtr r = RedisCommandReply(node.port, {"ROLE"});
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 4) continue;
    if (RedisReplyText(r->element[0]) == "slave" && r->element[2]->integer == master_port &&
        RedisReplyText(r->element[3]) == "connected") {
      return node.port;
    }
  }
  return -1;
}

std::string RedisCluster::NodeId(int port) const {
  absl::StatusOr<std::string> r = Command(port, {"CLUSTER", "MYID"});
  return r.ok() ? *r : std::string();
}

absl::Status RedisCluster::MoveSlot(int slot, int to_port) {
  const int from_port = MasterOfSlot(slot);
  if (from_port < 0) return absl::FailedPreconditionError("the slot has no master");
  if (from_port == to_port) return absl::OkStatus();
  const std::string from_id = NodeId(from_port);
  const std::string to_id = NodeId(to_port);
  const std::string s = std::to_string(slot);
  for (const auto& [port, argv] : std::vector<std::pair<int, std::vector<std::string>>>{
           {to_port, {"CLUSTER", "SETSLOT", s, "IMPORTING", from_id}},
           {from_port, {"CLUSTER", "SETSLOT", s, "MIGRATING", to_id}},
           {to_port, {"CLUSTER", "SETSLOT", s, "NODE", to_id}},
           {from_port, {"CLUSTER", "SETSLOT", s, "NODE", to_id}}}) {
    absl::StatusOr<std::string> r = Command(port, argv);
    if (!r.ok()) return r.status();
  }
  const bool agreed = WaitFor(
      [&] {
        for (const Node& node : nodes_) {
          if (node.pid <= 0) continue;
          bool found = false;
          for (const auto& [start, range] : SlotMap(node.port)) {
            if (slot >= start && slot <= range.first) found = range.second == to_port;
          }
          if (!found) return false;
        }
        return true;
      },
      absl::Seconds(30));
  return agreed ? absl::OkStatus()
                : absl::DeadlineExceededError("the nodes did not agree on the moved slot");
}

void RedisCluster::Kill(int port) {
  for (Node& node : nodes_) {
    if (node.port == port && node.pid > 0) {
      ::kill(node.pid, SIGKILL);
      ::waitpid(node.pid, nullptr, 0);
      node.pid = -1;
    }
  }
}

void RedisCluster::Pause(int port) {
  for (const Node& node : nodes_) {
    if (node.port == port && node.pid > 0) ::kill(node.pid, SIGSTOP);
  }
}

void RedisCluster::Resume(int port) {
  for (const Node& node : nodes_) {
    if (node.port == port && node.pid > 0) ::kill(node.pid, SIGCONT);
  }
}

bool RedisCluster::alive(int port) const {
  for (const Node& node : nodes_) {
    if (node.port == port) return node.pid > 0;
  }
  return false;
}

long long RedisCluster::ShardNumSub(int port, const std::string& channel) const {
  absl::StatusOr<std::string> r = Command(port, {"PUBSUB", "SHARDNUMSUB", channel});
  if (!r.ok()) return -1;
  return std::stoll(r->substr(r->find('\n') + 1));
}

bool RedisCluster::WaitForHealthy(absl::Duration timeout) const {
  return WaitFor(
      [&] {
        std::map<int, std::pair<int, int>> first;
        bool have_first = false;
        for (const Node& node : nodes_) {
          if (node.pid <= 0) continue;
          absl::StatusOr<std::string> info = Command(node.port, {"CLUSTER", "INFO"});
          if (!info.ok() || !absl::StrContains(*info, "cluster_state:ok")) return false;
          std::map<int, std::pair<int, int>> slots = SlotMap(node.port);
          if (!have_first) {
            first = std::move(slots);
            have_first = true;
          } else if (slots != first) {
            return false;
          }
        }
        // Every slot is served, by a live master.
        int covered = 0;
        for (const auto& [start, range] : first) {
          if (!alive(range.second)) return false;
          covered += range.first - start + 1;
        }
        return covered == kSlots;
      },
      timeout);
}

}  // namespace bridge::testing
