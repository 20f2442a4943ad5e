#include "bridge/redis/redis_url.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace bridge::redis {
namespace {

constexpr absl::string_view kRedisScheme = "redis://";
constexpr absl::string_view kUnixScheme = "unix://";
constexpr absl::string_view kSentinelScheme = "redis+sentinel://";
constexpr absl::string_view kClusterScheme = "redis+cluster://";
constexpr int kSentinelPort = 26379;

// Never echoes the URL: it may carry a password.
absl::Status Invalid(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("bad Redis URL: ", why));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> PercentDecode(absl::string_view in, absl::string_view what) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad Redis URL: truncated percent escape in the ", what));
    }
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad Redis URL: invalid percent escape in the ", what));
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string PercentEncode(absl::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

void AppendNode(std::string* out, const RedisUrl::Node& node) {
  if (node.host.find(':') != std::string::npos) {
    absl::StrAppend(out, "[", node.host, "]:", node.port);
  } else {
    absl::StrAppend(out, node.host, ":", node.port);
  }
}

absl::StatusOr<int> ParseDb(absl::string_view text) {
  int db = 0;
  if (text.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(text[0])) ||
      !absl::SimpleAtoi(text, &db) || db < 0) {
    return Invalid(absl::StrCat("database must be a non-negative integer, got '", text, "'"));
  }
  return db;
}

// host[:port], or [ipv6][:port]; `default_port` when the port is left out.
absl::StatusOr<RedisUrl::Node> ParseNode(absl::string_view authority, int default_port) {
  RedisUrl::Node out;
  out.port = default_port;
  absl::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return Invalid("unterminated IPv6 literal");
    out.host = std::string(authority.substr(1, close - 1));
    const absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Invalid("junk after the IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return Invalid("empty port");
    }
  } else {
    const size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return Invalid("empty port");
    }
  }
  if (out.host.empty()) return Invalid("missing host");
  if (!port_text.empty()) {
    int port = 0;
    if (!absl::ascii_isdigit(static_cast<unsigned char>(port_text[0])) ||
        !absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535) {
      return Invalid(absl::StrCat("port must be 1..65535, got '", port_text, "'"));
    }
    out.port = port;
  }
  return out;
}

// Takes "user:password@" off the front of `rest`, when there, into `out`.
absl::Status ParseCredentials(absl::string_view& rest, RedisUrl& out) {
  // The host part holds no '@', so the last one ends the credentials; a password that
  // contains '@' or '/' must be percent-encoded anyway.
  const size_t at = rest.rfind('@');
  if (at == absl::string_view::npos) return absl::OkStatus();
  const absl::string_view userinfo = rest.substr(0, at);
  rest = rest.substr(at + 1);
  const size_t colon = userinfo.find(':');
  if (colon == absl::string_view::npos) {
    return Invalid("credentials must be user:password@ or :password@");
  }
  absl::StatusOr<std::string> user = PercentDecode(userinfo.substr(0, colon), "user");
  if (!user.ok()) return user.status();
  absl::StatusOr<std::string> password = PercentDecode(userinfo.substr(colon + 1), "password");
  if (!password.ok()) return password.status();
  if (password->empty()) return Invalid("empty password");
  out.user = *std::move(user);
  out.password = *std::move(password);
  return absl::OkStatus();
}

// redis+sentinel://[user:password@]s1[:port],s2[:port]/master[/db][?sentinel_user=..&
// sentinel_password=..]; `rest` follows the scheme.
absl::StatusOr<RedisUrl> ParseSentinel(absl::string_view rest) {
  RedisUrl out;
  out.mode = RedisUrl::Mode::kSentinel;
  if (rest.find('#') != absl::string_view::npos) {
    return Invalid("fragments are not supported in redis+sentinel:// URLs");
  }
  absl::string_view query;
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  // The path starts at the first '/' after the credentials (which end at the last '@').
  const size_t at = rest.rfind('@');
  const size_t slash = rest.find('/', at == absl::string_view::npos ? 0 : at);
  if (slash == absl::string_view::npos) {
    return Invalid("a Sentinel URL names its master: redis+sentinel://s1:26379,s2:26379/mymaster");
  }
  absl::string_view authority = rest.substr(0, slash);
  absl::string_view path = rest.substr(slash + 1);
  if (absl::Status st = ParseCredentials(authority, out); !st.ok()) return st;
  for (absl::string_view part : absl::StrSplit(authority, ',')) {
    absl::StatusOr<RedisUrl::Node> node = ParseNode(part, kSentinelPort);
    if (!node.ok()) return node.status();
    out.nodes.push_back(*std::move(node));
  }
  const size_t db_slash = path.find('/');
  absl::StatusOr<std::string> name = PercentDecode(path.substr(0, db_slash), "master name");
  if (!name.ok()) return name.status();
  if (name->empty()) {
    return Invalid("a Sentinel URL names its master: redis+sentinel://s1:26379,s2:26379/mymaster");
  }
  out.master_name = *std::move(name);
  if (db_slash != absl::string_view::npos) {
    const absl::string_view db = path.substr(db_slash + 1);
    if (!db.empty()) {
      absl::StatusOr<int> parsed = ParseDb(db);
      if (!parsed.ok()) return parsed.status();
      out.db = *parsed;
    }
  }
  if (!query.empty()) {
    for (absl::string_view param : absl::StrSplit(query, '&')) {
      const size_t eq = param.find('=');
      const absl::string_view key = param.substr(0, eq);
      const absl::string_view value =
          eq == absl::string_view::npos ? absl::string_view() : param.substr(eq + 1);
      std::string* field = nullptr;
      if (key == "sentinel_user") {
        field = &out.sentinel_user;
      } else if (key == "sentinel_password") {
        field = &out.sentinel_password;
      } else {
        return Invalid(
            "the query parameters of a Sentinel URL are sentinel_user and sentinel_password");
      }
      absl::StatusOr<std::string> decoded = PercentDecode(value, std::string(key));
      if (!decoded.ok()) return decoded.status();
      if (decoded->empty()) return Invalid(absl::StrCat("empty ", key));
      *field = *std::move(decoded);
    }
    if (!out.sentinel_user.empty() && out.sentinel_password.empty()) {
      return Invalid("sentinel_user needs a sentinel_password");
    }
  }
  return out;
}

absl::StatusOr<RedisUrl> ParseUnix(absl::string_view rest) {
  RedisUrl out;
  out.transport = RedisUrl::Transport::kUnix;
  absl::string_view query;
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (rest.empty() || rest[0] != '/') {
    return Invalid("a Unix socket path must be absolute (unix:///path/to.sock)");
  }
  out.socket_path = std::string(rest);
  if (!query.empty()) {
    if (!absl::StartsWith(query, "db=")) {
      return Invalid("the only query parameter of a Unix socket URL is db=N");
    }
    absl::StatusOr<int> db = ParseDb(query.substr(3));
    if (!db.ok()) return db.status();
    out.db = *db;
  }
  return out;
}

// redis+cluster://[user:password@]h1[:p1],h2[:p2],... (after the scheme). A cluster has
// one database, so no /db; nor a Unix socket, since the nodes announce TCP addresses.
absl::StatusOr<RedisUrl> ParseCluster(absl::string_view rest) {
  if (rest.find_first_of("?#/") != absl::string_view::npos) {
    return Invalid("a cluster URL takes no database, path, query or fragment");
  }
  RedisUrl out;
  out.mode = RedisUrl::Mode::kCluster;
  if (absl::Status st = ParseCredentials(rest, out); !st.ok()) return st;
  for (absl::string_view part : absl::StrSplit(rest, ',')) {
    if (part.empty()) return Invalid("empty node in the cluster's node list");
    absl::StatusOr<RedisUrl::Node> node = ParseNode(part, 6379);
    if (!node.ok()) return node.status();
    out.nodes.push_back(*std::move(node));
  }
  out.host = out.nodes.front().host;
  out.port = out.nodes.front().port;
  return out;
}

}  // namespace

absl::StatusOr<RedisUrl> RedisUrl::Parse(std::string_view text) {
  // Debian's abseil has its own string_view type.
  const absl::string_view url(text.data(), text.size());
  if (url.empty()) return Invalid("empty");
  if (url[0] == '/') return ParseUnix(url);
  if (absl::StartsWithIgnoreCase(url, kUnixScheme)) {
    return ParseUnix(url.substr(kUnixScheme.size()));
  }
  if (absl::StartsWithIgnoreCase(url, kSentinelScheme)) {
    return ParseSentinel(url.substr(kSentinelScheme.size()));
  }
  if (absl::StartsWithIgnoreCase(url, kClusterScheme)) {
    return ParseCluster(url.substr(kClusterScheme.size()));
  }
  if (absl::StartsWithIgnoreCase(url, "rediss://")) {
    return Invalid("TLS (rediss://) is not supported by this build");
  }
  if (!absl::StartsWithIgnoreCase(url, kRedisScheme)) {
    return Invalid(
        "expected redis://host:port, redis+cluster://host:port,host:port, unix:///path or an "
        "absolute socket path");
  }
  absl::string_view rest = url.substr(kRedisScheme.size());
  if (rest.find_first_of("?#") != absl::string_view::npos) {
    return Invalid("query strings and fragments are not supported in redis:// URLs");
  }

  RedisUrl out;
  if (absl::Status st = ParseCredentials(rest, out); !st.ok()) return st;

  absl::string_view authority = rest;
  if (const size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    authority = rest.substr(0, slash);
    const absl::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      absl::StatusOr<int> parsed = ParseDb(db);
      if (!parsed.ok()) return parsed.status();
      out.db = *parsed;
    }
  }

  absl::StatusOr<RedisUrl::Node> node = ParseNode(authority, out.port);
  if (!node.ok()) return node.status();
  out.host = std::move(node->host);
  out.port = node->port;
  return out;
}

RedisUrl RedisUrl::AtNode(const Node& node) const {
  RedisUrl out;
  out.host = node.host;
  out.port = node.port;
  out.user = user;
  out.password = password;
  out.db = db;
  return out;
}

RedisUrl RedisUrl::SentinelAt(const Node& node) const {
  RedisUrl out;
  out.host = node.host;
  out.port = node.port;
  out.user = sentinel_user;
  out.password = sentinel_password;
  return out;
}

std::string RedisUrl::Redacted() const {
  if (is_sentinel() || is_cluster()) {
    std::string out(is_sentinel() ? kSentinelScheme : kClusterScheme);
    if (!password.empty()) absl::StrAppend(&out, PercentEncode(user), ":***@");
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (i > 0) out.push_back(',');
      AppendNode(&out, nodes[i]);
    }
    if (is_cluster()) return out;
    absl::StrAppend(&out, "/", PercentEncode(master_name));
    if (db != 0) absl::StrAppend(&out, "/", db);
    if (!sentinel_password.empty()) {
      absl::StrAppend(&out, "?");
      if (!sentinel_user.empty()) {
        absl::StrAppend(&out, "sentinel_user=", PercentEncode(sentinel_user), "&");
      }
      absl::StrAppend(&out, "sentinel_password=***");
    }
    return out;
  }
  if (is_unix()) {
    std::string out = absl::StrCat("unix://", socket_path);
    if (db != 0) absl::StrAppend(&out, "?db=", db);
    return out;
  }
  std::string out(kRedisScheme);
  if (!password.empty()) absl::StrAppend(&out, PercentEncode(user), ":***@");
  AppendNode(&out, Node{host, port});
  if (db != 0) absl::StrAppend(&out, "/", db);
  return out;
}

}  // namespace bridge::redis
