#ifndef BRIDGE_TESTS_SUPPORT_REDIS_SERVER_H_
#define BRIDGE_TESTS_SUPPORT_REDIS_SERVER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct redisReply;

namespace bridge::testing {

// A real redis-server on a free loopback port, in a temporary directory, for one test.
// Stop() (or the destructor) ends it; Restart() brings it back on the same port.
class RedisServer {
 public:
  // Extra lines for redis.conf may be given, e.g. {"requirepass secret"}.
  explicit RedisServer(std::vector<std::string> config = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts it and waits (bounded) until it answers PING.
  void Start();
  // SIGKILL, as a crash would; waits for the process to be gone.
  void Kill();
  // SIGTERM and wait.
  void Stop();
  // SIGSTOP: the process freezes with its connections open (the kernel still accepts new
  // ones into the backlog), as a hung Redis would. Resume() is SIGCONT; Kill and Stop
  // resume it first.
  void Pause();
  void Resume();
  void Restart() {
    Kill();
    Start();
  }

  int port() const { return port_; }
  const std::string& unix_socket() const { return socket_path_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  bool running() const { return pid_ > 0; }

  // Runs one command on a fresh connection; the reply as text (integers in decimal,
  // arrays joined with '\n'), or an error.
  absl::StatusOr<std::string> Command(const std::vector<std::string>& argv) const;
  // PUBSUB NUMSUB channel: how many clients Redis counts as subscribers of it.
  long long NumSub(const std::string& channel) const;
  // PUBSUB NUMPAT: how many pattern subscriptions Redis counts.
  long long NumPat() const;
  // PUBLISH; returns Redis' receiver count.
  long long Publish(const std::string& channel, const std::string& payload) const;

 private:
  std::vector<std::string> config_;
  std::string dir_;
  std::string socket_path_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
};

// A hiredis reply, freed with it.
struct RedisReplyFree {
  void operator()(redisReply* reply) const;
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyFree>;

// One command to the Redis (or sentinel) on 127.0.0.1:`port`, over a fresh blocking
// connection, after AUTH with `password` when there is one; each step waits at most
// `timeout` (infinite: as long as it takes), so that a node a test killed or froze does
// not hang the question. Null when nothing answers.
RedisReplyPtr RedisCommandReply(int port, const std::vector<std::string>& argv,
                                const std::string& password = "",
                                absl::Duration timeout = absl::Seconds(2));
// The same as text: integers in decimal, nil as "", arrays joined with '\n'; an error
// reply is INTERNAL with its text, no answer UNAVAILABLE.
absl::StatusOr<std::string> RedisCommandAt(int port, const std::vector<std::string>& argv,
                                           const std::string& password = "",
                                           absl::Duration timeout = absl::Seconds(2));
// A reply as RedisCommandAt words it.
std::string RedisReplyText(const redisReply* reply);

// Starts `argv` (found on PATH: redis-server, redis-cli) and returns its pid. The process
// dies with the test, even one that crashed, and holds none of its pipes (its input and
// output are /dev/null): an orphan holding ctest's pipe would keep ctest waiting.
pid_t SpawnQuiet(const std::vector<std::string>& argv);

// A free TCP port on 127.0.0.1 (bound then released).
int FreePort();

// Calls `ready` until it returns true or `timeout` passes; returns its last answer.
// For conditions that no event announces (a count in another process).
bool WaitFor(const std::function<bool()>& ready, absl::Duration timeout = absl::Seconds(10));

}  // namespace bridge::testing

#endif  // BRIDGE_TESTS_SUPPORT_REDIS_SERVER_H_
