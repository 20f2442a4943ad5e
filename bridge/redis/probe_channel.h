#ifndef BRIDGE_REDIS_PROBE_CHANNEL_H_
#define BRIDGE_REDIS_PROBE_CHANNEL_H_

#include <string_view>

namespace bridge::redis {

// Every delivery probe's channel (DeliveryProbe) starts with this. Bridge never hands a
// message on such a channel to the hub (a pattern subscription that matches it included),
// and refuses to subscribe one for a client, so probes reach no client, whichever Bridge
// process sent them. Apart from delivery_probe.h, which needs hiredis and Asio, so that
// bridge_redis_refused can word the refusal.
inline constexpr std::string_view kProbeChannelPrefix = "__bridge_probe__:";

inline bool IsProbeChannel(std::string_view channel) {
  return channel.substr(0, kProbeChannelPrefix.size()) == kProbeChannelPrefix;
}

}  // namespace bridge::redis

#endif  // BRIDGE_REDIS_PROBE_CHANNEL_H_
