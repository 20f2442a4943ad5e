#ifndef BRIDGE_AUTH_GRANT_H_
#define BRIDGE_AUTH_GRANT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace bridge::auth {

// What one client, known by its token, may do: the channels it may subscribe to and
// publish to, each a list of globs (bridge/auth/glob.h). Immutable once built; a stream or
// socket keeps the grant it connected with.
struct Grant {
  // For logs: who this is, never the token.
  std::string name;
  std::vector<std::string> subscribe;
  std::vector<std::string> publish;

  // A channel may be subscribed when one of `subscribe` matches it.
  bool MaySubscribeChannel(std::string_view channel) const;
  // A pattern subscription reaches every channel it matches, which no glob can be checked
  // against; so, as in Redis' ACLs, a pattern must be one of `subscribe` literally, or
  // `subscribe` holds "*".
  bool MaySubscribePattern(std::string_view pattern) const;
  bool MayPublish(std::string_view channel) const;

  // OK, or PERMISSION_DENIED saying which channel or pattern the grant does not cover: the
  // one refusal every front end sends (and logs), so it never quotes the token.
  absl::Status CheckSubscribeChannel(std::string_view channel) const;
  absl::Status CheckSubscribePattern(std::string_view pattern) const;
  // The first of `channels`, then of `patterns` (any ranges of strings), that the grant
  // does not cover, for a request that subscribes all its topics or none.
  template <typename Channels, typename Patterns>
  absl::Status CheckSubscribe(const Channels& channels, const Patterns& patterns) const {
    for (const auto& channel : channels) {
      if (absl::Status st = CheckSubscribeChannel(channel); !st.ok()) return st;
    }
    for (const auto& pattern : patterns) {
      if (absl::Status st = CheckSubscribePattern(pattern); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  // The grant of a server without an access file: everything.
  static const Grant& Everything();
};

}  // namespace bridge::auth

#endif  // BRIDGE_AUTH_GRANT_H_
