#ifndef BRIDGE_CLIENTS_CLI_RESUME_POSITIONS_H_
#define BRIDGE_CLIENTS_CLI_RESUME_POSITIONS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "bridge/v1/bridge.pb.h"

namespace bridgectl {

// The last place `subscribe` saw in each durable channel it holds by name, so that the
// stream opened after a lost one (to the same Bridge or to another replica: offsets and
// epochs are the same on every one) asks for exactly what it missed, through
// SubscribeRequest.resume, instead of losing it. Owned by RunSubscribe; one thread.
class ResumePositions {
 public:
  // Remembers the position of `message`, when it has one (a durable channel's) and came
  // from a channel subscription. A pattern's match is left out: resuming it would
  // subscribe its channel by name, which nobody asked for. Within an epoch the position
  // only moves forward; a new epoch (the history was lost) replaces it.
  void Observe(const bridge::v1::Message& message);

  // The request of a new stream: `channels` and `patterns` as asked, except that each
  // channel with a position goes into `resume` instead of `channels` (its keys are
  // subscribed too).
  bridge::v1::SubscribeRequest Request(const std::vector<std::string>& channels,
                                       const std::vector<std::string>& patterns) const;

  // Whether `channel` has a position: a new stream resumes it rather than lose anything.
  bool Has(absl::string_view channel) const;

  const std::map<std::string, bridge::v1::StreamPosition, std::less<>>& positions() const {
    return positions_;
  }

 private:
  std::map<std::string, bridge::v1::StreamPosition, std::less<>> positions_;
};

}  // namespace bridgectl

#endif  // BRIDGE_CLIENTS_CLI_RESUME_POSITIONS_H_
