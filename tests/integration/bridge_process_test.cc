// The bridge binary as an operator runs it: flags, environment variables, signals.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/grpc_client.h"
#include "tests/support/redis_server.h"

namespace bridge::testing {
namespace {

// Runs the binary with `args` and `env` added to the environment, its output appended to
// `log` if given; returns its pid.
pid_t Spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const std::string& log = "") {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!log.empty()) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    std::string bin = BRIDGE_BINARY;
    argv.push_back(bin.data());
    // No fixed WebSocket port: tests run in parallel. A later --ws_addr wins.
    std::string ws_addr = "--ws_addr=127.0.0.1:0";
    argv.push_back(ws_addr.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// Kills the child if a test ends before it did.
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ~ChildGuard() {
    if (::waitpid(pid_, nullptr, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

 private:
  pid_t pid_;
};

// Waits for the process to exit within `timeout`; its exit code, or -1.
int WaitExit(pid_t pid, absl::Duration timeout) {
  int status = 0;
  const bool exited = WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The scheduling policy of every thread of `pid`, one entry per thread.
std::vector<int> ThreadPolicies(pid_t pid) {
  std::vector<int> policies;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"))) {
    policies.push_back(::sched_getscheduler(std::stoi(task.path().filename().string())));
  }
  return policies;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string RunCommand(const std::string& command, int* code) {
  FILE* p = ::popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  *code = WEXITSTATUS(::pclose(p));
  return out;
}

TEST(BridgeProcessTest, HelpDocumentsEveryFlagAndItsVariable) {
  int code = 0;
  const std::string help = RunCommand(absl::StrCat(BRIDGE_BINARY, " --help 2>&1"), &code);
  for (const char* flag :
       {"--redis", "--grpc_addr", "--max_queued_messages", "--max_queued_bytes", "--slow_consumer",
        "--max_subscriptions", "--max_channel_length", "--max_payload_bytes",
        "--grpc_keepalive_time", "--grpc_keepalive_timeout", "--shutdown_grace", "--sched_batch",
        "--log_level", "--access_file"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(help.find("BRIDGE_REDIS"), std::string::npos);
  EXPECT_NE(help.find("BRIDGE_GRPC_ADDR"), std::string::npos);
  EXPECT_NE(help.find("default: \"0.0.0.0:50051\""), std::string::npos);
}

TEST(BridgeProcessTest, BadConfigurationIsRefusedWithExitCode2) {
  int code = 0;
  std::string out =
      RunCommand(absl::StrCat(BRIDGE_BINARY, " --slow_consumer=sometimes 2>&1"), &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--slow_consumer"), std::string::npos) << out;
  out = RunCommand(absl::StrCat(BRIDGE_BINARY, " --redis=http://x 2>&1"), &code);
  EXPECT_EQ(code, 2);
  out = RunCommand(absl::StrCat("BRIDGE_MAX_QUEUED_MESSAGES=lots ", BRIDGE_BINARY, " 2>&1"), &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("BRIDGE_MAX_QUEUED_MESSAGES"), std::string::npos) << out;
  // An access file that is missing, or says something wrong, stops the start.
  const std::string redis = absl::StrCat(" --redis=redis://127.0.0.1:", FreePort(),
                                         " --grpc_addr=127.0.0.1:0 --ws_addr=127.0.0.1:0");
  out = RunCommand(
      absl::StrCat(BRIDGE_BINARY, redis, " --access_file=/nonexistent/access.json 2>&1"), &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("/nonexistent/access.json"), std::string::npos) << out;
  const std::string path = absl::StrCat(::testing::TempDir(), "/bad-access-", getpid(), ".json");
  WriteFile(path, R"({"clients": [{"name": "ui", "token": "short"}]})");
  out = RunCommand(absl::StrCat(BRIDGE_BINARY, redis, " --access_file=", path, " 2>&1"), &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("clients[0] (ui): the token is shorter than 16 bytes"), std::string::npos)
      << out;
  std::remove(path.c_str());
}

// SIGHUP reads the access file again: new calls follow the new file, streams already open
// keep their grant, and a broken file leaves the rules in force as they were.
TEST(BridgeProcessTest, SighupReloadsTheAccessFile) {
  RedisServer redis;
  const int port = FreePort();
  const std::string dir = ::testing::TempDir();
  const std::string path = absl::StrCat(dir, "/access-", getpid(), ".json");
  const std::string log = absl::StrCat(dir, "/access-", getpid(), ".log");
  const std::string first = "first-token-0123456789", second = "second-token-0123456789";
  auto grant = [](const std::string& token) {
    return absl::StrCat(R"({"clients": [{"name": "svc", "token": ")", token,
                        R"(", "subscribe": ["ops"]}]})");
  };
  WriteFile(path, grant(first));
  const pid_t pid = Spawn({absl::StrCat("--grpc_addr=127.0.0.1:", port), "--redis=" + redis.url(),
                           "--access_file=" + path},
                          {}, log);
  ChildGuard guard(pid);
  auto channel = Connect(port);
  ASSERT_TRUE(
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)));
  StreamReader open(channel, Channels({"ops"}), first);
  ASSERT_TRUE(open.WaitSubscribed());
  auto status_with = [&](const std::string& token) {
    StreamReader probe(channel, Channels({"ops"}), token);
    if (probe.WaitSubscribed(1, absl::Seconds(5))) return ::grpc::StatusCode::OK;
    return probe.WaitForEnd().error_code();
  };
  EXPECT_EQ(status_with(second), ::grpc::StatusCode::UNAUTHENTICATED);

  WriteFile(path, grant(second));
  ::kill(pid, SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return status_with(second) == ::grpc::StatusCode::OK; }));
  EXPECT_EQ(status_with(first), ::grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_EQ(redis.Publish("ops", "still"), 1);
  ASSERT_TRUE(open.WaitForEvents(2));
  EXPECT_EQ(open.events()[1].message().payload(), "still");

  WriteFile(path, "{broken");
  ::kill(pid, SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("stays as it was") != std::string::npos; }));
  EXPECT_EQ(status_with(second), ::grpc::StatusCode::OK);
  ::kill(pid, SIGTERM);
  EXPECT_EQ(WaitExit(pid, absl::Seconds(8)), 0);
  std::remove(path.c_str());
  std::remove(log.c_str());
}

// Configured from the environment, the command line winning; SIGTERM ends open streams
// with UNAVAILABLE and the process exits 0 within its grace.
TEST(BridgeProcessTest, EnvironmentConfiguresAndSigtermDrains) {
  RedisServer redis;
  const int port = FreePort();
  const pid_t pid = Spawn({absl::StrCat("--grpc_addr=127.0.0.1:", port), "--shutdown_grace=2s"},
                          {absl::StrCat("BRIDGE_REDIS=", redis.url()),
                           "BRIDGE_GRPC_ADDR=127.0.0.1:1", "BRIDGE_LOG_LEVEL=warning"});
  ChildGuard guard(pid);
  auto channel = Connect(port);
  ASSERT_TRUE(
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)));
  StreamReader reader(channel, Channels({"ops"}));
  ASSERT_TRUE(reader.WaitSubscribed());
  ASSERT_EQ(redis.Publish("ops", "hi"), 1);
  ASSERT_TRUE(reader.WaitForEvents(2));
  // --sched_batch is on by default: every thread, gRPC's and Asio's included.
  const std::vector<int> policies = ThreadPolicies(pid);
  EXPECT_GT(policies.size(), 2u);
  for (int policy : policies) EXPECT_EQ(policy, SCHED_BATCH);

  const absl::Time before = absl::Now();
  ::kill(pid, SIGTERM);
  EXPECT_EQ(reader.WaitForEnd(absl::Seconds(5)).error_code(), ::grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(WaitExit(pid, absl::Seconds(5)), 0);
  EXPECT_LT(absl::Now() - before, absl::Seconds(3));
  EXPECT_TRUE(WaitFor([&] { return redis.NumSub("ops") == 0; }));
}

TEST(BridgeProcessTest, SigintAlsoDrains) {
  RedisServer redis;
  const int port = FreePort();
  const pid_t pid = Spawn(
      {absl::StrCat("--grpc_addr=127.0.0.1:", port), absl::StrCat("--redis=", redis.unix_socket())},
      {"BRIDGE_LOG_LEVEL=warning", "BRIDGE_SCHED_BATCH=false"});
  ChildGuard guard(pid);
  auto channel = Connect(port);
  ASSERT_TRUE(
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)));
  StreamReader reader(channel, Channels({"unix"}));
  ASSERT_TRUE(reader.WaitSubscribed());
  for (int policy : ThreadPolicies(pid)) EXPECT_EQ(policy, SCHED_OTHER);
  ::kill(pid, SIGINT);
  EXPECT_EQ(reader.WaitForEnd(absl::Seconds(8)).error_code(), ::grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(WaitExit(pid, absl::Seconds(8)), 0);
}

// A listen address already in use: the process says why and exits 1 at once. Its Redis
// connection never started, and stopping it must not wait for a thread that never ran.
TEST(BridgeProcessTest, PortInUseExitsPromptly) {
  // Bound without SO_REUSEPORT, which gRPC would otherwise share with it.
  const int taken = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(taken, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(taken, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  ASSERT_EQ(::getsockname(taken, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  // Nothing listens there: Redis need not be up for a start, and is never reached here.
  const std::string redis = absl::StrCat("--redis=redis://127.0.0.1:", FreePort());

  for (const char* which : {"grpc", "ws"}) {
    SCOPED_TRACE(which);
    const std::string other = std::string(which) == "grpc" ? "ws" : "grpc";
    const std::string command =
        absl::StrCat("timeout -s KILL 30 ", BRIDGE_BINARY, " ", redis, " --", which,
                     "_addr=127.0.0.1:", port, " --", other, "_addr=127.0.0.1:0 2>&1");
    const absl::Time before = absl::Now();
    int code = 0;
    const std::string out = RunCommand(command, &code);
    EXPECT_LT(absl::Now() - before, absl::Seconds(3)) << out;
    EXPECT_EQ(code, 1) << out;
    EXPECT_NE(out.find("cannot start"), std::string::npos) << out;
    EXPECT_EQ(out.find("strand is blocked"), std::string::npos) << out;
  }
  ::close(taken);
}

}  // namespace
}  // namespace bridge::testing
