#include "bench/fanout/ws_clients.h"

#include <hiredis/hiredis.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <optional>
#include <span>
#include <string_view>
#include <thread>

#include "bench/fanout/ws_frame_reader.h"

namespace bridge::bench {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

// ---- WebSocket -------------------------------------------------------------------------

class WsClients::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(WsClients* owner, int index)
      : owner_(owner), index_(index), ws_(net::make_strand(owner->ioc_)) {}

  void DoConnect() {
    beast::get_lowest_layer(ws_).async_connect(
        owner_->endpoint_, beast::bind_front_handler(&Session::OnConnect, shared_from_this()));
  }

  void Close() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      if (self->socket_.has_value()) {
        self->socket_->close(ec);
      } else {
        beast::get_lowest_layer(self->ws_).socket().close(ec);
      }
    });
  }

 private:
  Receiver* receiver() { return owner_->receiver_; }

  void Fail(beast::error_code ec, const char* what) {
    if (ec == net::error::operation_aborted) return;
    receiver()->OnFailed(index_, std::string(what) + ": " + ec.message());
  }

  void OnConnect(beast::error_code ec) {
    if (ec) {
      owner_->OpenNext();
      return Fail(ec, "connect");
    }
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws_.async_handshake(owner_->host_, owner_->path_,
                        beast::bind_front_handler(&Session::OnHandshake, shared_from_this()));
  }

  void OnHandshake(beast::error_code ec) {
    owner_->OpenNext();
    if (ec) return Fail(ec, "handshake");
    request_ = R"({"op":"subscribe","channels":[")" +
               receiver()->ChannelName(receiver()->ChannelOf(index_)) + R"("]})";
    ws_.text(true);
    ws_.async_write(net::buffer(request_),
                    beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, size_t) {
    if (ec) return Fail(ec, "write");
    // From here on the frames are read straight off the socket: one read takes whatever
    // frames are there and they are parsed in place, so that the generator, not its
    // client library, is what a fast server has to keep busy. The servers send nothing
    // before the "subscribed" answer, so Beast holds no bytes of ours.
    socket_.emplace(std::move(beast::get_lowest_layer(ws_).socket()));
    DoRead();
  }

  void DoRead() {
    const std::span<char> space = frames_.Space();
    socket_->async_read_some(net::buffer(space.data(), space.size()),
                             beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t n) {
    if (ec) return Fail(ec, "read");
    frames_.Commit(n);
    while (auto frame = frames_.Next()) {
      if (!frame->fin || frame->opcode == 0) return receiver()->OnFailed(index_, "fragmented");
      switch (frame->opcode) {
        case 1:  // text
          Handle(frame->payload);
          break;
        case 8:  // close
          return receiver()->OnFailed(index_, "closed by the server");
        case 9:  // ping: a pong with the same payload, masked with a zero key
          SendPong(frame->payload);
          break;
        default:
          break;
      }
    }
    if (!frames_.error().empty()) return receiver()->OnFailed(index_, frames_.error());
    DoRead();
  }

  void SendPong(std::string_view payload) {
    if (pong_in_flight_ || payload.size() > 125) return;
    pong_.assign({'\x8a', static_cast<char>(0x80 | payload.size()), 0, 0, 0, 0});
    pong_.append(payload);
    pong_in_flight_ = true;
    net::async_write(*socket_, net::buffer(pong_),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->pong_in_flight_ = false;
                       if (ec) self->Fail(ec, "pong");
                     });
  }

  void Handle(std::string_view frame) {
    static constexpr std::string_view kOp = R"("op":")";
    const size_t op = frame.find(kOp);
    if (op == std::string_view::npos) return;
    const std::string_view rest = frame.substr(op + kOp.size());
    if (rest.starts_with("message\"")) {
      static constexpr std::string_view kData = R"("data":")";
      const size_t d = rest.find(kData);
      if (d == std::string_view::npos) return receiver()->OnFailed(index_, "message without data");
      receiver()->OnMessage(index_, rest.substr(d + kData.size()));
    } else if (rest.starts_with("subscribed\"")) {
      receiver()->OnSubscribed(index_);
    } else if (rest.starts_with("gap\"")) {
      receiver()->OnGap(index_);
    } else if (rest.starts_with("error\"")) {
      receiver()->OnFailed(index_, frame);
    }
  }

  WsClients* const owner_;
  const int index_;
  // Until subscribed; then socket_ takes the connection over.
  websocket::stream<beast::tcp_stream> ws_;
  std::optional<tcp::socket> socket_;
  WsFrameReader frames_;
  std::string request_;
  std::string pong_;
  bool pong_in_flight_ = false;
};

WsClients::WsClients(Receiver* receiver, const std::string& host, int port, std::string path,
                     int threads, int concurrency)
    : receiver_(receiver),
      host_(host),
      path_(std::move(path)),
      threads_(threads),
      concurrency_(concurrency),
      endpoint_(net::ip::make_address(host), static_cast<unsigned short>(port)) {}

WsClients::~WsClients() { Stop(); }

void WsClients::Start() {
  for (int i = 0; i < receiver_->size(); ++i) {
    sessions_.push_back(std::make_shared<Session>(this, i));
  }
  for (int i = 0; i < concurrency_; ++i) OpenNext();
  for (int i = 0; i < threads_; ++i) workers_.emplace_back([this] { ioc_.run(); });
}

void WsClients::OpenNext() {
  const int i = next_.fetch_add(1);
  if (i < static_cast<int>(sessions_.size())) sessions_[i]->DoConnect();
}

void WsClients::Stop() {
  if (workers_.empty()) return;
  for (auto& s : sessions_) s->Close();
  // Let the closes run (peers see a clean FIN), then stop whatever is left.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ioc_.stop();
  for (auto& t : workers_) t.join();
  workers_.clear();
  sessions_.clear();
}

// ---- Redis -----------------------------------------------------------------------------

class RedisClients::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(RedisClients* owner, int index)
      : owner_(owner),
        index_(index),
        socket_(net::make_strand(owner->ioc_)),
        reader_(redisReaderCreate()) {}
  ~Session() { redisReaderFree(reader_); }

  void DoConnect() {
    socket_.async_connect(owner_->endpoint_,
                          beast::bind_front_handler(&Session::OnConnect, shared_from_this()));
  }
  void Close() {
    net::post(socket_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->socket_.close(ec);
    });
  }

 private:
  Receiver* receiver() { return owner_->receiver_; }
  void Fail(beast::error_code ec, const char* what) {
    if (ec == net::error::operation_aborted) return;
    receiver()->OnFailed(index_, std::string(what) + ": " + ec.message());
  }

  void OnConnect(beast::error_code ec) {
    owner_->OpenNext();
    if (ec) return Fail(ec, "connect");
    const std::string channel = receiver()->ChannelName(receiver()->ChannelOf(index_));
    char* cmd = nullptr;
    const int len = redisFormatCommand(&cmd, "SUBSCRIBE %b", channel.data(), channel.size());
    command_.assign(cmd, static_cast<size_t>(len));
    redisFreeCommand(cmd);
    net::async_write(socket_, net::buffer(command_),
                     beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }
  void OnWrite(beast::error_code ec, size_t) {
    if (ec) return Fail(ec, "write");
    DoRead();
  }
  void DoRead() {
    socket_.async_read_some(net::buffer(buf_),
                            beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }
  void OnRead(beast::error_code ec, size_t n) {
    if (ec) return Fail(ec, "read");
    redisReaderFeed(reader_, buf_.data(), n);
    void* r = nullptr;
    while (redisReaderGetReply(reader_, &r) == REDIS_OK && r != nullptr) {
      Handle(static_cast<redisReply*>(r));
      freeReplyObject(r);
    }
    DoRead();
  }
  void Handle(const redisReply* r) {
    if (r->type != REDIS_REPLY_ARRAY) return;
    if (r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING) return;
    const std::string_view kind(r->element[0]->str, r->element[0]->len);
    if (kind == "message") {
      receiver()->OnMessage(index_, std::string_view(r->element[2]->str, r->element[2]->len));
    } else if (kind == "subscribe") {
      receiver()->OnSubscribed(index_);
    }
  }

  RedisClients* const owner_;
  const int index_;
  tcp::socket socket_;
  redisReader* reader_;
  std::string command_;
  std::array<char, 16384> buf_;
};

RedisClients::RedisClients(Receiver* receiver, const std::string& host, int port, int threads,
                           int concurrency)
    : receiver_(receiver),
      threads_(threads),
      concurrency_(concurrency),
      endpoint_(net::ip::make_address(host), static_cast<unsigned short>(port)) {}

RedisClients::~RedisClients() { Stop(); }

void RedisClients::Start() {
  for (int i = 0; i < receiver_->size(); ++i) {
    sessions_.push_back(std::make_shared<Session>(this, i));
  }
  for (int i = 0; i < concurrency_; ++i) OpenNext();
  for (int i = 0; i < threads_; ++i) workers_.emplace_back([this] { ioc_.run(); });
}

void RedisClients::OpenNext() {
  const int i = next_.fetch_add(1);
  if (i < static_cast<int>(sessions_.size())) sessions_[i]->DoConnect();
}

void RedisClients::Stop() {
  if (workers_.empty()) return;
  for (auto& s : sessions_) s->Close();
  // Let the closes run (peers see a clean FIN), then stop whatever is left.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ioc_.stop();
  for (auto& t : workers_) t.join();
  workers_.clear();
  sessions_.clear();
}

}  // namespace bridge::bench
