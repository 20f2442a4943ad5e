#ifndef BRIDGE_HUB_DURABLE_ENVELOPE_H_
#define BRIDGE_HUB_DURABLE_ENVELOPE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bridge::hub {

// How a durable channel's message travels on its broker channel: the payload with its
// epoch and offset in front,
//
//   "\x1f" "bridge1" "\x1f" <epoch> "\x1f" <offset, decimal> "\x1f" <payload>
//
// so that every subscriber of the channel (every Bridge replica, and anyone with
// redis-cli) gets the position with the message. The broker's script seals it
// (redis/durable_script); the hub opens it.
inline constexpr std::string_view kEnvelopePrefix =
    "\x1f"
    "bridge1"
    "\x1f";

struct OpenedEnvelope {
  std::string_view epoch;
  uint64_t offset = 0;
  std::string_view payload;
};

// The parts of a sealed message (views into `message`), or nullopt for a message that is
// not one: a plain PUBLISH, or a malformed envelope.
std::optional<OpenedEnvelope> OpenEnvelope(std::string_view message);

// Seals a payload as the broker's script does; for tests and test doubles.
std::string SealEnvelope(std::string_view epoch, uint64_t offset, std::string_view payload);

}  // namespace bridge::hub

#endif  // BRIDGE_HUB_DURABLE_ENVELOPE_H_
