#include "bridge/ws/http_session.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "boost/asio/dispatch.hpp"
#include "boost/beast/websocket.hpp"
#include "bridge/common/log.h"
#include "bridge/ws/url_query.h"
#include "bridge/ws/ws_session.h"

namespace bridge::ws {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

// Requests are GETs: a few headers, no body worth the name.
constexpr std::uint32_t kMaxHeaderBytes = 8 << 10;
constexpr std::uint64_t kMaxBodyBytes = 1 << 10;

// What GET /healthz reports: the owner's view when it gave one, else the hub's.
std::string HealthProblem(const ServerState& state) {
  if (state.options().health_problem) return state.options().health_problem();
  return state.hub()->Healthy() ? std::string() : std::string("redis unavailable");
}

}  // namespace

HttpSession::HttpSession(asio::ip::tcp::socket&& socket, std::shared_ptr<ServerState> state,
                         Loop* loop)
    : stream_(std::move(socket)), state_(std::move(state)), loop_(loop) {}

void HttpSession::Run() {
  // Start on the connection's loop: the acceptor's handler runs on another.
  asio::dispatch(stream_.get_executor(),
                 beast::bind_front_handler(&HttpSession::DoRead, shared_from_this()));
}

void HttpSession::DoRead() {
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  parser_->body_limit(kMaxBodyBytes);
  stream_.expires_after(absl::ToChronoNanoseconds(state_->options().handshake_timeout));
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
}

void HttpSession::OnRead(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) {
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  if (ec && ec.category() == http::make_error_code(http::error::bad_version).category() &&
      ec != http::error::partial_message) {
    return RefuseMalformed(ec);
  }
  if (ec) return Fail(ec, "read");
  Request request = parser_->release();
  if (beast::websocket::is_upgrade(request)) return Upgrade(std::move(request));
  DoWrite(Answer(request));
}

void HttpSession::Upgrade(Request request) {
  auto refuse = [&](http::status status, std::string_view why) {
    Response res{status, request.version()};
    res.set(http::field::server, "bridge");
    if (status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::string(why) + "\n";
    res.keep_alive(false);
    res.prepare_payload();
    DoWrite(std::move(res));
  };
  auto target = ParseTarget(std::string_view(request.target().data(), request.target().size()));
  if (!target) return refuse(http::status::bad_request, "malformed URL");
  if (target->path != "/ws") return refuse(http::status::not_found, "not found");
  if (auto origin = request.find(http::field::origin); origin != request.end()) {
    const std::string_view value(origin->value().data(), origin->value().size());
    if (!state_->OriginAllowed(value)) {
      BRIDGE_LOG(Info, "ws: refused origin %s", value);
      return refuse(http::status::forbidden, "origin not allowed");
    }
  }
  std::vector<std::string> channels;
  std::vector<std::string> patterns;
  // Browsers cannot set headers on a WebSocket: they give the token in the URL.
  std::optional<std::string_view> token;
  if (auto header = request.find(http::field::authorization); header != request.end()) {
    token =
        auth::Access::BearerToken(std::string_view(header->value().data(), header->value().size()));
  }
  for (auto& [key, value] : target->params) {
    if (key == "channel") channels.push_back(std::move(value));
    if (key == "pattern") patterns.push_back(std::move(value));
    if (key == "access_token" && !token.has_value()) token = value;
  }
  absl::StatusOr<std::shared_ptr<const auth::Grant>> grant = state_->access().Authenticate(token);
  if (!grant.ok()) {
    const std::string why(grant.status().message());
    BRIDGE_LOG(Info, "ws: refused a connection: %s", why);
    return refuse(http::status::unauthorized, why);
  }
  if (absl::Status st = (*grant)->CheckSubscribe(channels, patterns); !st.ok()) {
    return refuse(http::status::forbidden, std::string(st.message()));
  }
  // The WebSocket has its own timeouts (see WsSession::Run).
  stream_.expires_never();
  // What the client sent after the request (a first frame in the same packet) is the
  // WebSocket's.
  std::string read_ahead = beast::buffers_to_string(buffer_.data());
  std::make_shared<WsSession>(std::move(stream_), std::move(read_ahead), state_, loop_,
                              *std::move(grant))
      ->Run(std::move(request), std::move(channels), std::move(patterns));
}

HttpSession::Response HttpSession::Answer(const Request& request) const {
  Response res{http::status::ok, request.version()};
  res.set(http::field::server, "bridge");
  res.keep_alive(request.keep_alive());
  auto text = [&](http::status status, std::string body) {
    res.result(status);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::move(body);
  };
  // Every resource here is read-only: GET, and HEAD, which answers GET's headers alone.
  const bool head = request.method() == http::verb::head;
  const bool readable = head || request.method() == http::verb::get;
  auto refuse_method = [&] {
    text(http::status::method_not_allowed, "use GET\n");
    res.set(http::field::allow, "GET, HEAD");
  };
  auto target = ParseTarget(std::string_view(request.target().data(), request.target().size()));
  if (!target) {
    text(http::status::bad_request, "malformed URL\n");
  } else if (target->path == "/healthz") {
    if (!readable) {
      refuse_method();
    } else if (std::string problem = HealthProblem(*state_); problem.empty()) {
      text(http::status::ok, "ok\n");
    } else {
      text(http::status::service_unavailable, problem + "\n");
    }
    res.set(http::field::cache_control, "no-store");
  } else if (target->path == "/metrics" && state_->options().metrics) {
    if (!readable) {
      refuse_method();
    } else {
      res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.body() = state_->options().metrics();
    }
    res.set(http::field::cache_control, "no-store");
  } else if (target->path == "/ws") {
    text(http::status::upgrade_required, "this is a WebSocket endpoint\n");
    res.set(http::field::upgrade, "websocket");
  } else if (const StaticFiles::File* file = state_->files().Find(target->path)) {
    if (!readable) {
      refuse_method();
    } else {
      res.set(http::field::content_type, file->content_type);
      res.set(http::field::cache_control, "no-cache");
      res.set("X-Content-Type-Options", "nosniff");
      res.body() = *file->body;
    }
  } else {
    text(http::status::not_found, "not found\n");
  }
  res.prepare_payload();
  // The Content-Length stays the one GET's body has.
  if (head) res.body().clear();
  return res;
}

// A request the parser refused (two Content-Lengths, Content-Length with chunked, headers
// past the limit, bad syntax) is answered, then the connection closed: the rest of its
// bytes cannot be trusted to start another request.
void HttpSession::RefuseMalformed(beast::error_code ec) {
  BRIDGE_LOG(Debug, "http: refusing a malformed request: %s", ec.message());
  const bool too_large = ec == http::error::header_limit;
  Response res{too_large                       ? http::status::request_header_fields_too_large
               : ec == http::error::body_limit ? http::status::payload_too_large
                                               : http::status::bad_request,
               11};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = absl::StrCat(too_large ? "request headers too large" : "malformed request", ": ",
                            ec.message(), "\n");
  res.keep_alive(false);
  res.prepare_payload();
  DoWrite(std::move(res));
}

void HttpSession::DoWrite(Response response) {
  response_ = std::move(response);
  const bool keep_alive = response_->keep_alive();
  stream_.expires_after(absl::ToChronoNanoseconds(state_->options().handshake_timeout));
  http::async_write(
      stream_, *response_,
      beast::bind_front_handler(&HttpSession::OnWrite, shared_from_this(), keep_alive));
}

void HttpSession::OnWrite(bool keep_alive, beast::error_code ec, std::size_t) {
  if (ec) return Fail(ec, "write");
  response_.reset();
  if (!keep_alive) {
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  DoRead();
}

void HttpSession::Fail(beast::error_code ec, const char* what) {
  if (ec == asio::error::operation_aborted) return;
  BRIDGE_LOG(Debug, "http: %s: %s", what, ec.message());
}

}  // namespace bridge::ws
