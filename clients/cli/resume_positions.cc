#include "clients/cli/resume_positions.h"

namespace bridgectl {

void ResumePositions::Observe(const bridge::v1::Message& message) {
  if (message.offset() == 0 || !message.pattern().empty()) return;
  auto [it, inserted] = positions_.try_emplace(message.channel());
  bridge::v1::StreamPosition& position = it->second;
  // Offsets of different epochs do not compare: the newer epoch is the one the server
  // streams now.
  if (!inserted && position.epoch() == message.epoch() && position.offset() >= message.offset()) {
    return;
  }
  position.set_offset(message.offset());
  position.set_epoch(message.epoch());
}

bridge::v1::SubscribeRequest ResumePositions::Request(
    const std::vector<std::string>& channels, const std::vector<std::string>& patterns) const {
  bridge::v1::SubscribeRequest request;
  for (const std::string& channel : channels) {
    if (auto it = positions_.find(channel); it != positions_.end()) {
      (*request.mutable_resume())[channel] = it->second;
    } else {
      request.add_channels(channel);
    }
  }
  for (const std::string& pattern : patterns) request.add_patterns(pattern);
  return request;
}

bool ResumePositions::Has(absl::string_view channel) const { return positions_.contains(channel); }

}  // namespace bridgectl
