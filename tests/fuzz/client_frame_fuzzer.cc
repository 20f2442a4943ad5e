// libFuzzer target for what a WebSocket client controls: the text of its frames
// (ParseClientFrame), and, through publish, the payload bytes that the server later
// encodes into message frames (MessageFrame). Checks the invariants, not just crashes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/strings/escaping.h"
#include "bridge/hub/message.h"
#include "bridge/ws/client_frame.h"
#include "bridge/ws/server_frame.h"
#include "nlohmann/json.hpp"

namespace {

using ::bridge::ws::ClientError;
using ::bridge::ws::ClientFrame;
using ::bridge::ws::ClientFrameLimits;

constexpr ClientFrameLimits kLimits{.max_name_length = 64, .max_names = 8};

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

nlohmann::json MustParse(const std::string& text, const char* what) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  Check(!j.is_discarded(), what);
  return j;
}

void CheckNames(const std::vector<std::string>& names) {
  for (const auto& n : names) Check(!n.empty() && n.size() <= kLimits.max_name_length, "name");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const ClientFrame frame = ParseClientFrame(text, kLimits);
  if (const auto* e = std::get_if<ClientError>(&frame)) {
    // The answer the client gets must itself be valid JSON, whatever it sent.
    const auto j = MustParse(bridge::ws::ErrorFrame(e->code, e->message), "error frame");
    Check(j["code"] == bridge::ws::ErrorCodeName(e->code), "error code");
  } else if (const auto* s = std::get_if<bridge::ws::SubscribeCommand>(&frame)) {
    Check(!s->channels.empty() || !s->patterns.empty() || !s->resume.empty(),
          "subscribe names something");
    Check(s->channels.size() + s->patterns.size() + s->resume.size() <= kLimits.max_names,
          "subscribe limit");
    CheckNames(s->channels);
    CheckNames(s->patterns);
    for (const auto& [channel, position] : s->resume) {
      CheckNames({channel});
      Check(position.epoch.size() <= 64, "resume epoch");
    }
  } else if (const auto* u = std::get_if<bridge::ws::UnsubscribeCommand>(&frame)) {
    Check(u->channels.size() + u->patterns.size() <= kLimits.max_names, "unsubscribe limit");
    CheckNames(u->channels);
    CheckNames(u->patterns);
  } else if (const auto* p = std::get_if<bridge::ws::PublishCommand>(&frame)) {
    Check(!p->channel.empty() && p->channel.size() <= kLimits.max_name_length, "publish channel");
  } else if (const auto* h = std::get_if<bridge::ws::HistoryCommand>(&frame)) {
    CheckNames({h->channel});
    Check(h->id.size() <= 64, "history id");
    Check(!h->since.has_value() || h->since->epoch.size() <= 64, "history epoch");
  }

  // The same bytes as a Redis payload and channel name: the frame every browser gets
  // must be valid JSON that gives the payload back exactly.
  const bridge::hub::Message message(std::string(text.substr(0, 16)), "", std::string(text), 1);
  const auto j = MustParse(bridge::ws::MessageFrame(message), "message frame");
  // And as a durable channel's message, with the bytes as its epoch too.
  const bridge::hub::Message durable(std::string(text.substr(0, 16)), "", std::string(text), 1,
                                     bridge::hub::StreamPosition{size + 1, std::string(text)},
                                     size % 2 == 0);
  const auto d = MustParse(bridge::ws::MessageFrame(durable), "durable message frame");
  Check(d["offset"] == size + 1, "offset");
  if (j.contains("data")) {
    Check(j["data"].get<std::string>() == text, "data round trip");
  } else {
    std::string decoded;
    Check(absl::Base64Unescape(j["data_b64"].get<std::string>(), &decoded), "base64");
    Check(decoded == text, "data_b64 round trip");
    Check(!bridge::ws::IsValidUtf8(text), "text sent as base64");
  }
  return 0;
}
