#include "bridge/hub/durable_envelope.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

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
  // Debian's abseil has an absl::string_view of its own, not std::string_view.
  const std::string_view offset = rest.substr(epoch_end + 1, offset_end - epoch_end - 1);
  if (!absl::SimpleAtoi(absl::string_view(offset.data(), offset.size()), &out.offset) ||
      out.offset == 0) {
    return std::nullopt;
  }
  out.payload = rest.substr(offset_end + 1);
  return out;
}

std::string SealEnvelope(std::string_view epoch, uint64_t offset, std::string_view payload) {
  auto view = [](std::string_view s) { return absl::string_view(s.data(), s.size()); };
  return absl::StrCat(view(kEnvelopePrefix), view(epoch), "\x1f", offset, "\x1f", view(payload));
}

}  // namespace bridge::hub
