#ifndef BRIDGE_REDIS_SUBSCRIBE_REFUSED_H_
#define BRIDGE_REDIS_SUBSCRIBE_REFUSED_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "bridge/hub/topic.h"

namespace bridge::redis {

// The one wording of a (P)SUBSCRIBE that Redis refused (an ACL for Bridge's Redis user
// without that channel or pattern), for the logs and for the clients alike.
//
// `reply` is Redis' error text when known: the upstream has it, and reports it to the
// hub; a front end, told only of the topic, leaves it out and gets the ACL explanation
// instead. PERMISSION_DENIED, or FAILED_PRECONDITION for a reply other than NOPERM. A
// delivery probe's channel (probe_channel.h), which Bridge refuses itself, is worded as
// reserved.
//
// In a target of its own, bridge_redis_refused (abseil and the hub's Topic only), so that
// a front end can word a refusal without linking hiredis or Asio.
absl::Status SubscribeRefusedError(const hub::Topic& topic, absl::string_view reply = {});

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_SUBSCRIBE_REFUSED_H_
