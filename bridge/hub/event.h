#ifndef BRIDGE_HUB_EVENT_H_
#define BRIDGE_HUB_EVENT_H_

#include <cstdint>
#include <memory>

#include "bridge/hub/message.h"
#include "bridge/hub/topic.h"

namespace bridge::hub {

// Why messages were lost; the strings are part of the public contract.
inline constexpr char kGapSlowConsumer[] = "slow_consumer";
inline constexpr char kGapRedisReconnect[] = "redis_reconnect";
// A durable channel's history no longer holds what was asked for.
inline constexpr char kGapHistoryLost[] = "history_lost";

// One item of a subscriber's queue, in the order the subscriber must see them.
struct Event {
  enum class Type : uint8_t { kSubscribed, kMessage, kGap, kRefused };

  Type type = Type::kMessage;
  // kMessage: the shared message.
  std::shared_ptr<const Message> message;
  // kSubscribed, kGap and kRefused: the subscription concerned. kRefused: the broker
  // refused the topic (a Redis ACL without it); the subscriber no longer holds it.
  Topic topic;
  // kGap: one of the kGap* reasons, and how many messages were lost (0 when unknown).
  const char* reason = "";
  uint64_t dropped = 0;

  static Event Subscribed(Topic t) {
    Event e;
    e.type = Type::kSubscribed;
    e.topic = std::move(t);
    return e;
  }
  static Event Gap(Topic t, const char* reason, uint64_t dropped) {
    Event e;
    e.type = Type::kGap;
    e.topic = std::move(t);
    e.reason = reason;
    e.dropped = dropped;
    return e;
  }
  static Event Refused(Topic t) {
    Event e;
    e.type = Type::kRefused;
    e.topic = std::move(t);
    return e;
  }
  static Event OfMessage(std::shared_ptr<const Message> m) {
    Event e;
    e.message = std::move(m);
    return e;
  }
};

}  // namespace bridge::hub

#endif  // BRIDGE_HUB_EVENT_H_
