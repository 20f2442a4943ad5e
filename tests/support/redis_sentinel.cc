#include "tests/support/redis_sentinel.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace bridge::testing {
namespace {

constexpr int kSentinels = 3;

// One command with a short timeout: a node killed by a test must not hang the question.
absl::StatusOr<std::string> CommandAt(int port, const std::vector<std::string>& argv,
                                      const std::string& password = "") {
  return RedisCommandAt(port, argv, password, absl::Seconds(1));
}

// How many entries a SENTINEL REPLICAS or SENTINEL SENTINELS reply lists that carry
// `flags` exactly (the flattened reply holds "flags\n<flags>" per entry).
int CountWithFlags(const absl::StatusOr<std::string>& reply, const std::string& flags) {
  if (!reply.ok()) return -1;
  const std::vector<std::string> lines = absl::StrSplit(*reply, '\n');
  int n = 0;
  for (size_t i = 0; i + 1 < lines.size(); ++i) n += lines[i] == "flags" && lines[i + 1] == flags;
  return n;
}

}  // namespace

RedisSentinelSetup::RedisSentinelSetup(Options options) : options_(std::move(options)) {
  std::vector<std::string> config;
  if (!options_.master_password.empty()) {
    // Either node may be the master later: both require the password and use it.
    config.push_back("requirepass " + options_.master_password);
    config.push_back("masterauth " + options_.master_password);
  }
  nodes_[0] = std::make_unique<RedisServer>(config);
  config.push_back(absl::StrCat("replicaof 127.0.0.1 ", nodes_[0]->port()));
  nodes_[1] = std::make_unique<RedisServer>(config);
  // The sentinels find the replica through the master's INFO when they first connect;
  // one in sync is a candidate for promotion at once.
  const bool synced = WaitFor([&] {
    absl::StatusOr<std::string> info = nodes_[1]->Command({"INFO", "replication"});
    return info.ok() && absl::StrContains(*info, "master_link_status:up");
  });
  if (!synced) throw std::runtime_error("the replica did not sync with the master");

  sentinels_.resize(kSentinels);
  for (Sentinel& s : sentinels_) StartSentinel(s, nodes_[0]->port());
  // Sentinels learn of each other from hello messages through the master, every 2 s.
  const bool ready = WaitFor(
      [&] {
        for (int i = 0; i < kSentinels; ++i) {
          if (CountWithFlags(SentinelCommand(i, {"SENTINEL", "REPLICAS", kMasterName}), "slave") !=
                  1 ||
              CountWithFlags(SentinelCommand(i, {"SENTINEL", "SENTINELS", kMasterName}),
                             "sentinel") != kSentinels - 1) {
            return false;
          }
        }
        return true;
      },
      absl::Seconds(30));
  if (!ready) throw std::runtime_error("the sentinels did not find the replica and each other");
}

RedisSentinelSetup::~RedisSentinelSetup() {
  for (Sentinel& s : sentinels_) {
    if (s.pid > 0) {
      ::kill(s.pid, SIGKILL);
      ::waitpid(s.pid, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(s.dir, ec);
  }
}

void RedisSentinelSetup::StartSentinel(Sentinel& sentinel, int master_port) {
  char tmpl[] = "/tmp/bridge-sentinel-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  sentinel.dir = tmpl;
  sentinel.port = FreePort();
  // Sentinel rewrites its configuration file, so it lives in the sentinel's directory.
  const std::string conf_path = sentinel.dir + "/sentinel.conf";
  {
    std::ofstream conf(conf_path);
    conf << "port " << sentinel.port << "\nbind 127.0.0.1\ndir " << sentinel.dir
         << "\ndaemonize no\nlogfile " << sentinel.dir << "/sentinel.log\n"
         << "sentinel monitor " << kMasterName << " 127.0.0.1 " << master_port << " 2\n"
         << "sentinel down-after-milliseconds " << kMasterName << " 1000\n"
         << "sentinel failover-timeout " << kMasterName << " 3000\n"
         << "sentinel parallel-syncs " << kMasterName << " 1\n";
    if (!options_.master_password.empty()) {
      conf << "sentinel auth-pass " << kMasterName << " " << options_.master_password << "\n";
    }
    if (!options_.sentinel_password.empty()) {
      conf << "requirepass " << options_.sentinel_password << "\nsentinel sentinel-pass "
           << options_.sentinel_password << "\n";
    }
  }
  const pid_t pid = SpawnQuiet({"redis-server", conf_path, "--sentinel"});
  sentinel.pid = pid;
  const bool up = WaitFor([&] {
    int status;
    if (::waitpid(sentinel.pid, &status, WNOHANG) == sentinel.pid) {
      sentinel.pid = -1;
      throw std::runtime_error("redis-server --sentinel exited at start; see " + sentinel.dir +
                               "/sentinel.log");
    }
    absl::StatusOr<std::string> pong =
        CommandAt(sentinel.port, {"PING"}, options_.sentinel_password);
    return pong.ok() && *pong == "PONG";
  });
  if (!up) throw std::runtime_error("redis-server --sentinel did not answer PING in time");
}

std::string RedisSentinelSetup::url() const {
  std::vector<std::string> hosts;
  for (const Sentinel& s : sentinels_) hosts.push_back(absl::StrCat("127.0.0.1:", s.port));
  std::string url = "redis+sentinel://";
  if (!options_.master_password.empty()) absl::StrAppend(&url, ":", options_.master_password, "@");
  absl::StrAppend(&url, absl::StrJoin(hosts, ","), "/", kMasterName);
  if (!options_.sentinel_password.empty()) {
    absl::StrAppend(&url, "?sentinel_password=", options_.sentinel_password);
  }
  return url;
}

absl::StatusOr<std::string> RedisSentinelSetup::SentinelCommand(
    int i, const std::vector<std::string>& argv) const {
  return CommandAt(sentinels_[i].port, argv, options_.sentinel_password);
}

int RedisSentinelSetup::MasterPortBySentinel(int i) const {
  absl::StatusOr<std::string> reply =
      SentinelCommand(i, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", kMasterName});
  if (!reply.ok()) return -1;
  const std::vector<std::string> parts = absl::StrSplit(*reply, '\n');
  int port = -1;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &port)) return -1;
  return port;
}

std::string RedisSentinelSetup::Role(int i) const {
  absl::StatusOr<std::string> reply =
      CommandAt(nodes_[i]->port(), {"ROLE"}, options_.master_password);
  if (!reply.ok()) return "";
  return std::string(reply->substr(0, reply->find('\n')));
}

bool RedisSentinelSetup::WaitForMaster(int i, absl::Duration timeout) const {
  return WaitFor(
      [&] {
        for (int s = 0; s < kSentinels; ++s) {
          if (sentinels_[s].pid > 0 && MasterPortBySentinel(s) != nodes_[i]->port()) {
            return false;
          }
        }
        return Role(i) == "master";
      },
      timeout);
}

absl::Status RedisSentinelSetup::ForceFailover() const {
  absl::StatusOr<std::string> reply = SentinelCommand(0, {"SENTINEL", "FAILOVER", kMasterName});
  return reply.ok() ? absl::OkStatus() : reply.status();
}

}  // namespace bridge::testing
