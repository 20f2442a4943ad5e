#include "bridge/redis/subscribe_refused.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bridge/redis/probe_channel.h"

namespace bridge::redis {

absl::Status SubscribeRefusedError(const hub::Topic& topic, absl::string_view reply) {
  if (!topic.is_pattern() && IsProbeChannel(topic.name)) {
    return absl::PermissionDeniedError(
        absl::StrCat("channel ", topic.name, " is reserved: channels starting with ",
                     std::string(kProbeChannelPrefix), " carry Bridge's delivery probes"));
  }
  const std::string what = absl::StrCat("redis refused to subscribe ",
                                        topic.is_pattern() ? "pattern " : "channel ", topic.name);
  if (reply.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, " (its ACL for bridge does not allow it)"));
  }
  const std::string message = absl::StrCat(what, ": ", reply);
  return absl::StartsWith(reply, "NOPERM") ? absl::PermissionDeniedError(message)
                                           : absl::FailedPreconditionError(message);
}

}  // namespace bridge::redis
