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

absl::StatusOr<int> ParseDb(absl::string_view text) {
  int db = 0;
  if (text.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(text[0])) ||
      !absl::SimpleAtoi(text, &db) || db < 0) {
    return Invalid(absl::StrCat("database must be a non-negative integer, got '", text, "'"));
  }
  return db;
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

constexpr absl::string_view kClusterScheme = "redis+cluster://";

// One "host[:port]" or "[v6]:port" of a cluster URL's node list.
absl::StatusOr<RedisUrl::Node> ParseNode(absl::string_view text) {
  RedisUrl::Node node;
  absl::string_view port_text;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return Invalid("unterminated IPv6 literal");
    node.host = std::string(text.substr(1, close - 1));
    const absl::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Invalid("junk after the IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return Invalid("empty port");
    }
  } else {
    const size_t colon = text.find(':');
    node.host = std::string(text.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port_text = text.substr(colon + 1);
      if (port_text.empty()) return Invalid("empty port");
    }
  }
  if (node.host.empty()) return Invalid("missing host");
  if (!port_text.empty()) {
    int port = 0;
    if (!absl::ascii_isdigit(static_cast<unsigned char>(port_text[0])) ||
        !absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535) {
      return Invalid(absl::StrCat("port must be 1..65535, got '", port_text, "'"));
    }
    node.port = port;
  }
  return node;
}

// redis+cluster://[user:password@]h1[:p1],h2[:p2],... (after the scheme). A cluster has
// one database, so no /db; nor a Unix socket, since the nodes announce TCP addresses.
absl::StatusOr<RedisUrl> ParseCluster(absl::string_view rest) {
  if (rest.find_first_of("?#/") != absl::string_view::npos) {
    return Invalid("a cluster URL takes no database, path, query or fragment");
  }
  RedisUrl out;
  out.mode = RedisUrl::Mode::kCluster;
  if (const size_t at = rest.rfind('@'); at != absl::string_view::npos) {
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
  }
  for (absl::string_view part : absl::StrSplit(rest, ',')) {
    if (part.empty()) return Invalid("empty node in the cluster's node list");
    absl::StatusOr<RedisUrl::Node> node = ParseNode(part);
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
  // The host part holds no '@', so the last one ends the credentials; a password that
  // contains '@' or '/' must be percent-encoded anyway.
  if (const size_t at = rest.rfind('@'); at != absl::string_view::npos) {
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
  }

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

std::string RedisUrl::Redacted() const {
  if (is_cluster()) {
    std::string out(kClusterScheme);
    if (!password.empty()) absl::StrAppend(&out, PercentEncode(user), ":***@");
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (i > 0) out.push_back(',');
      if (nodes[i].host.find(':') != std::string::npos) {
        absl::StrAppend(&out, "[", nodes[i].host, "]:", nodes[i].port);
      } else {
        absl::StrAppend(&out, nodes[i].host, ":", nodes[i].port);
      }
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
  if (host.find(':') != std::string::npos) {
    absl::StrAppend(&out, "[", host, "]");
  } else {
    absl::StrAppend(&out, host);
  }
  absl::StrAppend(&out, ":", port);
  if (db != 0) absl::StrAppend(&out, "/", db);
  return out;
}

}  // namespace bridge::redis
