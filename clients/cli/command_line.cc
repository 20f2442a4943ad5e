#include "clients/cli/command_line.h"

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace bridgectl {
namespace {

constexpr char kUsage[] = R"(bridgectl: command-line client of Bridge (Redis pub/sub over gRPC).

Usage:
  bridgectl subscribe CHANNEL... [--pattern PATTERN]... [--reconnect] [--count N]
  bridgectl publish CHANNEL [MESSAGE] [--key KEY]   (MESSAGE from standard input if absent)
  bridgectl history CHANNEL [--limit N] [--since OFFSET --epoch EPOCH]
  bridgectl health [--service NAME] [--wait | --watch]
  bridgectl --help

Commands:
  subscribe   Streams the messages of the channels and glob patterns (Redis PSUBSCRIBE
              syntax), one line per event, until Ctrl-C or SIGTERM (exit status 0).
  publish     Publishes one message (Redis PUBLISH) and prints how many Redis clients
              received it; on a durable channel also its offset and epoch.
  history     Prints the kept history of a durable channel (a channel the server runs
              with --history for): the latest messages, or those after a position.
  health      Asks the gRPC health service; exit status 0 only when SERVING, i.e. when
              Bridge is connected to Redis.

Options (any command):
  --addr HOST:PORT    Bridge's gRPC address (default $BRIDGE_ADDR, else localhost:50051).
  --token TOKEN       Sent as "authorization: Bearer TOKEN" with every call, for a Bridge
                      with an access file (default $BRIDGE_TOKEN, which keeps it out of
                      the process list). Without the token it asks for, such a Bridge
                      answers UNAUTHENTICATED; for a channel the token does not allow,
                      PERMISSION_DENIED.
  --json              One JSON object per line, for jq and scripts.
  --timeout DURATION  Deadline of publish, history and health, e.g. 500ms, 5s, 1m
                      (default 10s).
  -h, --help          This text.
  --                  Ends the options: for a CHANNEL or MESSAGE that begins with '-'.

publish:
  --key KEY  An idempotency key (at most 256 bytes): a publish with the key of one made
             on the same channel within the server's --publish_key_window is not sent
             again, and prints "already published". Retrying with the same key after a
             DEADLINE_EXCEEDED or UNAVAILABLE delivers the message once.

history:
  --limit N              At most N messages (default: the server's limit).
  --since OFFSET         The messages after OFFSET of --epoch EPOCH (both or neither), as
  --epoch EPOCH          a resume would recover them; without them, the latest ones. When
                         the history no longer reaches back that far, or its epoch
                         changed, a history_lost gap says how many are gone.

subscribe:
  -p, --pattern PATTERN  Also subscribe to a pattern (repeatable).
  --reconnect            Wait for the server when it is not there (yet), and on a lost
                         stream (server gone, restarting) reconnect with exponential
                         backoff (250ms doubling up to 5s, with jitter) and resubscribe.
                         A durable channel of which a message came resumes after the last
                         one (the missed messages come first, marked "recovered"), on the
                         same server or another replica; every other channel or pattern
                         that was live gets a gap event, reason "bridge_reconnect". Errors
                         about the request itself (INVALID_ARGUMENT, UNAUTHENTICATED,
                         PERMISSION_DENIED, ...) still end it with exit status 1.
  --count N              Exit 0 after N messages.

health:
  --service NAME  The service to ask about: "" (default, the whole server) or
                  "bridge.v1.Bridge".
  --wait          Wait until SERVING, at most --timeout, instead of asking once.
  --watch         Print the status, then every change of it, until Ctrl-C or SIGTERM
                  (exit status 0) or until the server goes away (exit status 1).

Output (subscribe), one line per event:
  subscribed channel news                   {"op":"subscribed","channel":"news"}
  news #1: hello                            {"op":"message","channel":"news","seq":1,"data":"hello"}
  news.eu (news.*) #3: hi                   {"op":"message","channel":"news.eu","pattern":"news.*","seq":3,"data":"hi"}
  gap channel news: slow_consumer, 2 dropped {"op":"gap","channel":"news","reason":"slow_consumer","dropped":2}
  orders #4 offset=17 epoch=1733-0: paid    {"op":"message","channel":"orders","seq":4,"offset":17,"epoch":"1733-0","data":"paid"}
  orders offset=15 epoch=1733-0 recovered: new
                                            {"op":"message","channel":"orders","seq":0,"offset":15,"epoch":"1733-0","recovered":true,"data":"new"}
In human form, control characters are escaped (\n, \t, \xNN) and a payload that is not
UTF-8 is printed hex-escaped; in JSON it comes as "data_b64" (base64) instead of "data".

Exit status: 0 success (and Ctrl-C/SIGTERM), 1 an error from the server or the network
(printed as "bridgectl: CODE: message"), or health not SERVING, 2 a usage error.
)";

absl::Status UsageError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(what, " (see bridgectl --help)"));
}

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text) {
  absl::Duration d;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return UsageError(absl::StrCat("--timeout: not a duration: '", text, "'"));
  }
  if (d <= absl::ZeroDuration()) return UsageError("--timeout must be positive");
  return d;
}

// gRPC sends a metadata value as it is, so a control byte or a non-ASCII one would fail
// every call; and Bridge's tokens hold no spaces. The message never quotes the token.
absl::Status CheckToken(absl::string_view token, absl::string_view source) {
  if (token.empty()) return UsageError(absl::StrCat(source, " must not be empty"));
  for (char c : token) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= ' ' || byte > '~') {
      return UsageError(absl::StrCat(source, ": only printable ASCII, no spaces"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* Usage() { return kUsage; }

absl::StatusOr<Options> ParseCommandLine(const std::vector<std::string>& args, const char* env_addr,
                                         const char* env_token) {
  Options o;
  if (env_addr != nullptr && *env_addr != '\0') o.addr = env_addr;
  std::vector<std::string> positional;
  bool help = false;
  bool token_given = false;
  bool flags_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg == "-" || !absl::StartsWith(arg, "-")) {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    // --name=value or --name value.
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (std::size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    auto value = [&]() -> absl::StatusOr<std::string> {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) return UsageError(absl::StrCat(name, " needs a value"));
      return args[++i];
    };
    auto no_value = [&]() -> absl::Status {
      if (inline_value) return UsageError(absl::StrCat(name, " takes no value"));
      return absl::OkStatus();
    };
    if (name == "-h" || name == "--help") {
      help = true;
    } else if (name == "--json") {
      if (absl::Status s = no_value(); !s.ok()) return s;
      o.json = true;
    } else if (name == "--reconnect") {
      if (absl::Status s = no_value(); !s.ok()) return s;
      o.reconnect = true;
    } else if (name == "--wait") {
      if (absl::Status s = no_value(); !s.ok()) return s;
      o.wait = true;
    } else if (name == "--watch") {
      if (absl::Status s = no_value(); !s.ok()) return s;
      o.watch = true;
    } else if (name == "--addr") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      if (v->empty()) return UsageError("--addr must not be empty");
      o.addr = *v;
    } else if (name == "--token") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      if (absl::Status s = CheckToken(*v, "--token"); !s.ok()) return s;
      o.token = *v;
      token_given = true;
    } else if (name == "-p" || name == "--pattern") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      o.patterns.push_back(*v);
    } else if (name == "--key") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      if (v->empty() || v->size() > 256) {
        return UsageError("--key must be 1 to 256 bytes");
      }
      o.key = *v;
    } else if (name == "--limit") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      if (!absl::SimpleAtoi(*v, &o.limit)) {
        return UsageError(absl::StrCat("--limit: not a count: '", *v, "'"));
      }
    } else if (name == "--since") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      uint64_t offset = 0;
      if (!absl::SimpleAtoi(*v, &offset)) {
        return UsageError(absl::StrCat("--since: not an offset: '", *v, "'"));
      }
      o.since_offset = offset;
    } else if (name == "--epoch") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      if (v->empty()) return UsageError("--epoch must not be empty");
      o.since_epoch = *v;
    } else if (name == "--service") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      o.service = *v;
    } else if (name == "--timeout") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      absl::StatusOr<absl::Duration> d = ParseTimeout(*v);
      if (!d.ok()) return d.status();
      o.timeout = *d;
    } else if (name == "--count") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      if (!absl::SimpleAtoi(*v, &o.count) || o.count < 0) {
        return UsageError(absl::StrCat("--count: not a count: '", *v, "'"));
      }
    } else {
      return UsageError(absl::StrCat("unknown option ", name));
    }
  }
  if (help) {
    o.command = Command::kHelp;
    return o;
  }
  // Checked only when used: --token wins over a $BRIDGE_TOKEN that would not do.
  if (!token_given && env_token != nullptr && *env_token != '\0') {
    if (absl::Status s = CheckToken(env_token, "$BRIDGE_TOKEN"); !s.ok()) return s;
    o.token = env_token;
  }
  if (positional.empty()) return UsageError("missing command");
  const std::string command = positional.front();
  positional.erase(positional.begin());

  // Options that belong to another command are mistakes worth pointing out.
  auto only_for = [&](bool given, absl::string_view flag, Command c) -> absl::Status {
    if (given && o.command != c) {
      return UsageError(absl::StrCat(flag, " does not apply to ", command));
    }
    return absl::OkStatus();
  };
  if (command == "subscribe") {
    o.command = Command::kSubscribe;
    o.channels = positional;
    if (o.channels.empty() && o.patterns.empty()) {
      return UsageError("subscribe needs at least one CHANNEL or --pattern");
    }
  } else if (command == "publish") {
    o.command = Command::kPublish;
    if (positional.empty() || positional.size() > 2) {
      return UsageError("publish takes CHANNEL and an optional MESSAGE");
    }
    o.channel = positional[0];
    if (positional.size() == 2) o.message = positional[1];
  } else if (command == "history") {
    o.command = Command::kHistory;
    if (positional.size() != 1) return UsageError("history takes one CHANNEL");
    o.channel = positional[0];
    if (o.since_offset.has_value() != !o.since_epoch.empty()) {
      return UsageError("--since and --epoch go together");
    }
  } else if (command == "health") {
    o.command = Command::kHealth;
    if (!positional.empty()) return UsageError("health takes no arguments");
  } else if (command == "help") {
    o.command = Command::kHelp;
    return o;
  } else {
    return UsageError(absl::StrCat("unknown command '", command, "'"));
  }
  for (absl::Status s : {only_for(!o.patterns.empty(), "--pattern", Command::kSubscribe),
                         only_for(o.reconnect, "--reconnect", Command::kSubscribe),
                         only_for(o.count != 0, "--count", Command::kSubscribe),
                         only_for(!o.key.empty(), "--key", Command::kPublish),
                         only_for(o.limit != 0, "--limit", Command::kHistory),
                         only_for(o.since_offset.has_value(), "--since", Command::kHistory),
                         only_for(!o.since_epoch.empty(), "--epoch", Command::kHistory),
                         only_for(!o.service.empty(), "--service", Command::kHealth),
                         only_for(o.wait, "--wait", Command::kHealth),
                         only_for(o.watch, "--watch", Command::kHealth)}) {
    if (!s.ok()) return s;
  }
  if (o.wait && o.watch) return UsageError("--wait and --watch exclude each other");
  return o;
}

}  // namespace bridgectl
