#ifndef BRIDGE_HUB_TOPIC_H_
#define BRIDGE_HUB_TOPIC_H_

#include <cstdint>
#include <string>
#include <utility>

namespace bridge::hub {

// What a subscriber subscribes to: a channel (Redis SUBSCRIBE) or a glob pattern
// (Redis PSUBSCRIBE).
enum class TopicKind : uint8_t { kChannel, kPattern };

struct Topic {
  TopicKind kind = TopicKind::kChannel;
  std::string name;

  static Topic Channel(std::string name) { return {TopicKind::kChannel, std::move(name)}; }
  static Topic Pattern(std::string name) { return {TopicKind::kPattern, std::move(name)}; }

  bool is_pattern() const { return kind == TopicKind::kPattern; }

  friend bool operator==(const Topic& a, const Topic& b) {
    return a.kind == b.kind && a.name == b.name;
  }
  template <typename H>
  friend H AbslHashValue(H h, const Topic& t) {
    return H::combine(std::move(h), t.kind, t.name);
  }
};

}  // namespace bridge::hub

#endif  // BRIDGE_HUB_TOPIC_H_
