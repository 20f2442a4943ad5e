#include "bridge/hub/durable_envelope.h"

#include "absl/strings/numbers.h"

namespace bridge::hub {

std::optional<OpenedEnvelope> OpenEnvelope(std::string_view message) {
  if (message.substr(0, kEnvelopePrefix.size()) != kEnvelopePrefix) return std::nullopt;
  std::string_view rest = message.substr(kEnvelopePrefix.size());
  const size_t epoch_end = rest.find('\x1f');
  if (epoch_end == std::string_view::npos || epoch_end == 0) return std::nullopt;
  const size_t offset_end = rest.find('\x1f', epoch_end + 1);
  if (offset_end == std::string_view::npos) return std::nullopt;
  OpenedEnvelope out;
  out.epoch = rest.substr(0, epoch_end);
  const std::string_view digits = rest.substr(epoch_end + 1, offset_end - epoch_end - 1);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos ||
      !absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &out.offset) ||
      out.offset == 0) {
    return std::nullopt;
  }
  out.payload = rest.substr(offset_end + 1);
  return out;
}

std::string SealEnvelope(std::string_view epoch, uint64_t offset, std::string_view payload) {
  std::string out;
  out.reserve(kEnvelopePrefix.size() + epoch.size() + 22 + payload.size());
  out.append(kEnvelopePrefix).append(epoch).push_back('\x1f');
  out.append(std::to_string(offset)).push_back('\x1f');
  out.append(payload);
  return out;
}

}  // namespace bridge::hub
