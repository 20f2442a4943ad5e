#include "tests/support/redis_server.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace bridge::testing {

pid_t SpawnQuiet(const std::vector<std::string>& argv) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, STDIN_FILENO);
      ::dup2(devnull, STDOUT_FILENO);
      ::dup2(devnull, STDERR_FILENO);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    throw std::runtime_error("bind to a free port failed");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool WaitFor(const std::function<bool()>& ready, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(1);
  while (true) {
    if (ready()) return true;
    if (absl::Now() > deadline) return false;
    // Polling a condition in another process, with a bounded deadline: there is no event
    // to wait on. Backs off to 50 ms.
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
}

RedisServer::RedisServer(std::vector<std::string> config) : config_(std::move(config)) {
  char tmpl[] = "/tmp/bridge-redis-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  socket_path_ = dir_ + "/redis.sock";
  port_ = FreePort();
  Start();
}

RedisServer::~RedisServer() {
  Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void RedisServer::Start() {
  if (pid_ > 0) return;
  const std::string conf_path = dir_ + "/redis.conf";
  {
    std::ofstream conf(conf_path);
    conf << "port " << port_ << "\nbind 127.0.0.1\ndir " << dir_ << "\nunixsocket " << socket_path_
         << "\nunixsocketperm 700\nsave \"\"\nappendonly no\ndaemonize no\nlogfile " << dir_
         << "/redis.log\n";
    for (const auto& line : config_) conf << line << "\n";
  }
  const pid_t pid = SpawnQuiet({"redis-server", conf_path});
  pid_ = pid;
  const bool up = WaitFor([&] {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("redis-server exited at start; see " + dir_ + "/redis.log");
    }
    redisContext* c = redisConnect("127.0.0.1", port_);
    bool ok = false;
    if (c != nullptr && c->err == 0) {
      std::vector<std::string> auth;
      for (const auto& line : config_) {
        if (line.rfind("requirepass ", 0) == 0) auth = {"AUTH", line.substr(12)};
      }
      if (!auth.empty()) {
        freeReplyObject(redisCommand(c, "AUTH %s", auth[1].c_str()));
      }
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
      if (r != nullptr) freeReplyObject(r);
    }
    if (c != nullptr) redisFree(c);
    return ok;
  });
  if (!up) throw std::runtime_error("redis-server did not answer PING in time");
}

void RedisServer::Pause() {
  if (pid_ <= 0 || paused_) return;
  ::kill(pid_, SIGSTOP);
  // Stopped once waitpid says so, not merely once the signal is queued.
  ::waitpid(pid_, nullptr, WUNTRACED);
  paused_ = true;
}

void RedisServer::Resume() {
  if (pid_ <= 0 || !paused_) return;
  ::kill(pid_, SIGCONT);
  ::waitpid(pid_, nullptr, WCONTINUED);
  paused_ = false;
}

void RedisServer::Kill() {
  if (pid_ <= 0) return;
  Resume();
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void RedisServer::Stop() {
  if (pid_ <= 0) return;
  Resume();
  ::kill(pid_, SIGTERM);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void RedisReplyFree::operator()(redisReply* reply) const { freeReplyObject(reply); }

std::string RedisReplyText(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      return std::to_string(r->integer);
    case REDIS_REPLY_NIL:
      return "";
    case REDIS_REPLY_ARRAY: {
      std::vector<std::string> parts;
      for (size_t i = 0; i < r->elements; ++i) parts.push_back(RedisReplyText(r->element[i]));
      return absl::StrJoin(parts, "\n");
    }
    default:
      return std::string(r->str, r->len);
  }
}

RedisReplyPtr RedisCommandReply(int port, const std::vector<std::string>& argv,
                                const std::string& password, absl::Duration timeout) {
  const bool bounded = timeout != absl::InfiniteDuration();
  const timeval tv = absl::ToTimeval(timeout);
  redisContext* c =
      bounded ? redisConnectWithTimeout("127.0.0.1", port, tv) : redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err != 0) {
    if (c != nullptr) redisFree(c);
    return nullptr;
  }
  if (bounded) redisSetTimeout(c, tv);
  if (!password.empty()) {
    RedisReplyPtr auth(static_cast<redisReply*>(redisCommand(c, "AUTH %s", password.c_str())));
  }
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  RedisReplyPtr reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data())));
  redisFree(c);
  return reply;
}

absl::StatusOr<std::string> RedisCommandAt(int port, const std::vector<std::string>& argv,
                                           const std::string& password, absl::Duration timeout) {
  RedisReplyPtr r = RedisCommandReply(port, argv, password, timeout);
  if (r == nullptr) {
    return absl::UnavailableError(absl::StrCat("no answer from 127.0.0.1:", port));
  }
  if (r->type == REDIS_REPLY_ERROR) return absl::InternalError(std::string(r->str, r->len));
  return RedisReplyText(r.get());
}

absl::StatusOr<std::string> RedisServer::Command(const std::vector<std::string>& argv) const {
  std::string password;
  for (const auto& line : config_) {
    if (line.rfind("requirepass ", 0) == 0) password = line.substr(12);
  }
  return RedisCommandAt(port_, argv, password, absl::InfiniteDuration());
}

long long RedisServer::NumSub(const std::string& channel) const {
  auto r = Command({"PUBSUB", "NUMSUB", channel});
  if (!r.ok()) return -1;
  return std::stoll(r->substr(r->find('\n') + 1));
}

long long RedisServer::NumPat() const {
  auto r = Command({"PUBSUB", "NUMPAT"});
  return r.ok() ? std::stoll(*r) : -1;
}

long long RedisServer::Publish(const std::string& channel, const std::string& payload) const {
  auto r = Command({"PUBLISH", channel, payload});
  return r.ok() ? std::stoll(*r) : -1;
}

}  // namespace bridge::testing
