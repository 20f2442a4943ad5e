#ifndef BRIDGE_CLIENTS_CLI_EVENT_FORMATTER_H_
#define BRIDGE_CLIENTS_CLI_EVENT_FORMATTER_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "bridge/v1/bridge.pb.h"

namespace bridgectl {

// Turns what bridgectl prints into one line of text (no trailing newline): either the
// human form or one JSON object with the same keys as Bridge's WebSocket protocol ("op",
// "data" or "data_b64"), so that a script can read both the same way.
class EventFormatter {
 public:
  explicit EventFormatter(bool json) : json_(json) {}

  // A durable channel's message shows its offset and epoch, and whether it was recovered
  // from the history; other messages look as they always did.
  std::string Format(const bridge::v1::Event& event) const;
  // The answer to a publish: the receivers, whether the idempotency key was published
  // already (nothing was sent), and for a durable channel the message's offset and epoch.
  std::string Published(absl::string_view channel,
                        const bridge::v1::PublishResponse& response) const;
  // The answer to History: in human form a summary line, a gap line when the history no
  // longer reaches back to `since`, then one line per message; in JSON one object, the
  // WebSocket protocol's "history" frame.
  std::string History(absl::string_view channel, const bridge::v1::HistoryResponse& response) const;
  std::string Health(absl::string_view service, absl::string_view status) const;

  // Escapes a payload for one terminal line: UTF-8 text stays as it is except control
  // characters and backslashes; anything else becomes \xNN.
  static std::string Printable(absl::string_view bytes);
  static bool IsUtf8(absl::string_view bytes);

 private:
  bool json_;
};

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_EVENT_FORMATTER_H_
