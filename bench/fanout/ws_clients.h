#ifndef BRIDGE_BENCH_FANOUT_WS_CLIENTS_H_
#define BRIDGE_BENCH_FANOUT_WS_CLIENTS_H_

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/fanout/receiver.h"

namespace bridge::bench {

// N WebSocket connections to a server speaking Bridge's JSON protocol: each opens with
// Boost.Beast, sends {"op":"subscribe","channels":[...]}, then reads the frames straight
// off its socket (WsFrameReader), answering pings. Connections are
// opened `concurrency` at a time so a 10k ramp does not overflow the listen backlog.
class WsClients : public Clients {
 public:
  WsClients(Receiver* receiver, const std::string& host, int port, std::string path, int threads,
            int concurrency);
  ~WsClients() override;

  void Start() override;
  void Stop() override;

 private:
  class Session;

  // Opens the next connection, if any is left to open.
  void OpenNext();

  Receiver* const receiver_;
  const std::string host_;
  const std::string path_;
  const int threads_;
  const int concurrency_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::endpoint endpoint_;
  std::atomic<int> next_{0};
  std::vector<std::shared_ptr<Session>> sessions_;
  std::vector<std::thread> workers_;
};

// N subscriber connections straight to Redis (what each microservice would open
// without Bridge): SUBSCRIBE, then read RESP pushes with hiredis' reader.
class RedisClients : public Clients {
 public:
  RedisClients(Receiver* receiver, const std::string& host, int port, int threads, int concurrency);
  ~RedisClients() override;

  void Start() override;
  void Stop() override;

 private:
  class Session;
  void OpenNext();

  Receiver* const receiver_;
  const int threads_;
  const int concurrency_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::endpoint endpoint_;
  std::atomic<int> next_{0};
  std::vector<std::shared_ptr<Session>> sessions_;
  std::vector<std::thread> workers_;
};

}  // namespace bridge::bench

#endif  // BRIDGE_BENCH_FANOUT_WS_CLIENTS_H_
