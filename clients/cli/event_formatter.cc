#include "clients/cli/event_formatter.h"

#include <cstddef>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace bridgectl {
namespace {

using bridge::v1::Event;

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not valid UTF-8
// (overlong forms, surrogates and code points past U+10FFFF included).
std::size_t Utf8SequenceLength(absl::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// The subscription a Gap or Subscribed is about, in human form.
std::string Target(absl::string_view channel, absl::string_view pattern) {
  return pattern.empty() ? absl::StrCat("channel ", channel) : absl::StrCat("pattern ", pattern);
}

// Channel names are bytes too: one that is not UTF-8 shows with U+FFFD rather than throw.
std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A message with the keys of the WebSocket protocol's "message" frame ("seq" left out of
// a history answer's messages, as the protocol does).
nlohmann::json MessageJson(const bridge::v1::Message& m, bool with_seq) {
  nlohmann::json j = {{"op", "message"}, {"channel", m.channel()}};
  if (!m.pattern().empty()) j["pattern"] = m.pattern();
  if (with_seq) j["seq"] = m.seq();
  if (m.offset() != 0) {
    j["offset"] = m.offset();
    j["epoch"] = m.epoch();
    if (m.recovered()) j["recovered"] = true;
  }
  if (EventFormatter::IsUtf8(m.payload())) {
    j["data"] = m.payload();
  } else {
    j["data_b64"] = absl::Base64Escape(m.payload());
  }
  return j;
}

}  // namespace

bool EventFormatter::IsUtf8(absl::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size();) {
    std::size_t n = Utf8SequenceLength(bytes, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string EventFormatter::Printable(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    std::size_t n = Utf8SequenceLength(bytes, i);
    if (n > 1) {
      out.append(bytes.data() + i, n);
      i += n;
      continue;
    }
    ++i;
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (n == 1 && c >= 0x20 && c != 0x7F) {
          out.push_back(static_cast<char>(c));
        } else {
          absl::StrAppendFormat(&out, "\\x%02x", c);
        }
    }
  }
  return out;
}

std::string EventFormatter::Format(const Event& event) const {
  using nlohmann::json;
  switch (event.kind_case()) {
    case Event::kSubscribed: {
      const auto& s = event.subscribed();
      const bool is_pattern = s.target_case() == bridge::v1::Subscribed::kPattern;
      if (json_) {
        return Dump(
            json{{"op", "subscribed"},
                 {is_pattern ? "pattern" : "channel", is_pattern ? s.pattern() : s.channel()}});
      }
      return absl::StrCat("subscribed ",
                          is_pattern ? Target("", s.pattern()) : Target(s.channel(), ""));
    }
    case Event::kMessage: {
      const auto& m = event.message();
      if (json_) return Dump(MessageJson(m, /*with_seq=*/true));
      std::string line = Printable(m.channel());
      if (!m.pattern().empty()) absl::StrAppend(&line, " (", Printable(m.pattern()), ")");
      // A message recovered by a resume has no seq (0): it was not delivered by this stream.
      if (m.offset() == 0 || m.seq() != 0) absl::StrAppend(&line, " #", m.seq());
      if (m.offset() != 0) {
        absl::StrAppend(&line, " offset=", m.offset(), " epoch=", Printable(m.epoch()));
        if (m.recovered()) absl::StrAppend(&line, " recovered");
      }
      absl::StrAppend(&line, ": ", Printable(m.payload()));
      return line;
    }
    case Event::kGap: {
      const auto& g = event.gap();
      if (json_) {
        json j = {{"op", "gap"}};
        if (g.pattern().empty()) {
          j["channel"] = g.channel();
        } else {
          j["pattern"] = g.pattern();
        }
        j["reason"] = g.reason();
        j["dropped"] = g.dropped();
        return Dump(j);
      }
      std::string line = absl::StrCat("gap ", Printable(Target(g.channel(), g.pattern())), ": ",
                                      Printable(g.reason()));
      if (g.dropped() > 0) absl::StrAppend(&line, ", ", g.dropped(), " dropped");
      return line;
    }
    case Event::KIND_NOT_SET:
      break;
  }
  // An event kind newer than this bridgectl: say so rather than drop it silently.
  if (json_) return Dump(json{{"op", "unknown"}});
  return "unknown event (bridgectl is older than the server)";
}

std::string EventFormatter::Published(absl::string_view channel,
                                      const bridge::v1::PublishResponse& response) const {
  if (json_) {
    nlohmann::json json{{"op", "published"},
                        {"channel", std::string(channel)},
                        {"receivers", response.receivers()}};
    if (response.duplicate()) json["duplicate"] = true;
    if (response.offset() != 0) {
      json["offset"] = response.offset();
      json["epoch"] = response.epoch();
    }
    return Dump(json);
  }
  std::string line;
  if (response.duplicate()) {
    line =
        absl::StrCat("already published to ", Printable(channel), " with this key: not sent again");
  } else {
    line = absl::StrCat("published to ", Printable(channel), ": ", response.receivers(),
                        response.receivers() == 1 ? " receiver" : " receivers");
  }
  if (response.offset() != 0) {
    absl::StrAppend(&line, " (offset=", response.offset(), " epoch=", Printable(response.epoch()),
                    ")");
  }
  return line;
}

std::string EventFormatter::History(absl::string_view channel,
                                    const bridge::v1::HistoryResponse& response) const {
  if (json_) {
    nlohmann::json messages = nlohmann::json::array();
    for (const bridge::v1::Message& m : response.messages()) {
      nlohmann::json j = MessageJson(m, /*with_seq=*/false);
      // The frame's messages are its elements, not frames of their own: no op, no channel.
      j.erase("op");
      j.erase("channel");
      j.erase("recovered");
      messages.push_back(std::move(j));
    }
    return Dump(nlohmann::json{{"op", "history"},
                               {"channel", std::string(channel)},
                               {"epoch", response.epoch()},
                               {"offset", response.offset()},
                               {"messages", std::move(messages)},
                               {"history_lost", response.history_lost()},
                               {"lost", response.lost()}});
  }
  std::string text = absl::StrCat("history of ", Printable(channel), ": ");
  if (response.epoch().empty()) {
    absl::StrAppend(&text, "empty");
  } else {
    absl::StrAppend(&text, "epoch ", Printable(response.epoch()), ", latest offset ",
                    response.offset(), ", ", response.messages_size(),
                    response.messages_size() == 1 ? " message" : " messages");
  }
  if (response.history_lost()) {
    Event gap;
    gap.mutable_gap()->set_channel(std::string(channel));
    gap.mutable_gap()->set_reason("history_lost");
    gap.mutable_gap()->set_dropped(response.lost());
    absl::StrAppend(&text, "\n", Format(gap));
  }
  for (const bridge::v1::Message& m : response.messages()) {
    Event event;
    *event.mutable_message() = m;
    // Every message of a history is recovered; saying so on each line adds nothing.
    event.mutable_message()->set_recovered(false);
    if (m.channel().empty()) event.mutable_message()->set_channel(std::string(channel));
    absl::StrAppend(&text, "\n", Format(event));
  }
  return text;
}

std::string EventFormatter::Health(absl::string_view service, absl::string_view status) const {
  if (json_) {
    return Dump(nlohmann::json{{"service", std::string(service)}, {"status", std::string(status)}});
  }
  return std::string(status);
}

}  // namespace bridgectl
