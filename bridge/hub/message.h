#ifndef BRIDGE_HUB_MESSAGE_H_
#define BRIDGE_HUB_MESSAGE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/call_once.h"
#include "bridge/hub/history.h"
#include "bridge/hub/topic.h"

namespace bridge::hub {

// One message from Redis, as every subscriber of its topic receives it. The hub makes
// one per Redis delivery and shares it, immutable, by std::shared_ptr with every queue.
//
// Each front end encodes a message once, on first demand, into its own slot
// (Encoded()); every later subscriber of that front end reuses the same bytes.
class Message {
 public:
  // Slots for per-front-end encodings; each front end owns one index.
  static constexpr int kMaxEncodings = 4;

  // `position`: a durable channel's message's place in its history (offset 0 otherwise);
  // `recovered`: read back from that history rather than delivered live.
  Message(std::string channel, std::string pattern, std::string payload, uint64_t seq,
          StreamPosition position = {}, bool recovered = false)
      : channel_(std::move(channel)),
        pattern_(std::move(pattern)),
        payload_(std::move(payload)),
        seq_(seq),
        position_(std::move(position)),
        recovered_(recovered) {}
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  const std::string& channel() const { return channel_; }
  // The pattern that matched, empty for a channel subscription.
  const std::string& pattern() const { return pattern_; }
  const std::string& payload() const { return payload_; }
  uint64_t seq() const { return seq_; }
  // Offset 0 and an empty epoch for a channel that is not durable.
  const StreamPosition& position() const { return position_; }
  uint64_t offset() const { return position_.offset; }
  bool recovered() const { return recovered_; }

  // The subscription this message was delivered for.
  Topic topic() const {
    return pattern_.empty() ? Topic::Channel(channel_) : Topic::Pattern(pattern_);
  }

  // Returns the encoding in `slot`, making it with `encode(*this)` (which returns a T)
  // the first time. Thread-safe; `encode` runs at most once per message and slot.
  template <typename T, typename Encode>
  const T& Encoded(int slot, Encode&& encode) const {
    Slot& s = encodings_[slot];
    absl::call_once(s.once, [&] { s.value = std::make_shared<const T>(encode(*this)); });
    return *static_cast<const T*>(s.value.get());
  }

 private:
  struct Slot {
    absl::once_flag once;
    std::shared_ptr<const void> value;
  };

  const std::string channel_;
  const std::string pattern_;
  const std::string payload_;
  const uint64_t seq_;
  const StreamPosition position_;
  const bool recovered_;
  mutable std::array<Slot, kMaxEncodings> encodings_;
};

}  // namespace bridge::hub

#endif  // BRIDGE_HUB_MESSAGE_H_
