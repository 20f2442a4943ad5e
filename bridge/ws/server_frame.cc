#include "bridge/ws/server_frame.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "bridge/hub/upstream.h"
#include "bridge/redis/subscribe_refused.h"

namespace bridge::ws {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0 if there is none.
size_t Utf8SequenceLength(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  auto cont = [&](size_t i) {
    return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    const auto b1 = static_cast<unsigned char>(s[1]);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b0 == 0xED && b1 > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const auto b1 = static_cast<unsigned char>(s[1]);
    if (b0 == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b0 == 0xF4 && b1 > 0x8F) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

// Appends the JSON escape of one byte that needs one (quote, backslash, control).
void AppendEscape(std::string* out, unsigned char c) {
  switch (c) {
    case '"':
      out->append("\\\"");
      return;
    case '\\':
      out->append("\\\\");
      return;
    case '\n':
      out->append("\\n");
      return;
    case '\r':
      out->append("\\r");
      return;
    case '\t':
      out->append("\\t");
      return;
    case '\b':
      out->append("\\b");
      return;
    case '\f':
      out->append("\\f");
      return;
    default: {
      static constexpr char kHex[] = "0123456789abcdef";
      const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out->append(esc, sizeof(esc));
    }
  }
}

bool NeedsEscape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

void AppendTopic(std::string* out, const hub::Topic& topic) {
  out->append(topic.is_pattern() ? "\"pattern\":" : "\"channel\":");
  AppendJsonString(out, topic.name);
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // Fast path over ASCII, which most payloads are.
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void AppendJsonString(std::string* out, std::string_view s) {
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  size_t run = 0;  // start of the bytes not yet appended
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (NeedsEscape(c)) {
        out->append(s.data() + run, i - run);
        AppendEscape(out, c);
        run = i + 1;
      }
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(s.substr(i));
    if (n == 0) {
      out->append(s.data() + run, i - run);
      out->append("\xEF\xBF\xBD");  // U+FFFD
      run = ++i;
      continue;
    }
    i += n;
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

namespace {

// ,"offset":N,"epoch":.. for a durable channel's message.
void AppendPosition(std::string* out, const hub::Message& message) {
  if (message.offset() == 0) return;
  absl::StrAppend(out, ",\"offset\":", message.offset(), ",\"epoch\":");
  AppendJsonString(out, message.position().epoch);
}

// ,"data":.. or ,"data_b64":.. when the payload is not UTF-8.
void AppendData(std::string* out, const std::string& payload) {
  if (IsValidUtf8(payload)) {
    out->append(",\"data\":");
    AppendJsonString(out, payload);
  } else {
    out->append(",\"data_b64\":\"");
    out->append(absl::Base64Escape(payload));
    out->push_back('"');
  }
}

}  // namespace

std::string MessageFrame(const hub::Message& message) {
  const std::string& payload = message.payload();
  std::string out;
  // Room for the fixed parts, the names, and the payload without escapes (or its base64).
  out.reserve(96 + message.channel().size() + message.pattern().size() + payload.size() +
              payload.size() / 3);
  out.append("{\"op\":\"message\",\"channel\":");
  AppendJsonString(&out, message.channel());
  if (!message.pattern().empty()) {
    out.append(",\"pattern\":");
    AppendJsonString(&out, message.pattern());
  }
  absl::StrAppend(&out, ",\"seq\":", message.seq());
  AppendPosition(&out, message);
  if (message.recovered()) out.append(",\"recovered\":true");
  AppendData(&out, payload);
  out.push_back('}');
  return out;
}

std::string SubscribedFrame(const hub::Topic& topic) {
  std::string out = "{\"op\":\"subscribed\",";
  AppendTopic(&out, topic);
  out.push_back('}');
  return out;
}

std::string UnsubscribedFrame(const hub::Topic& topic) {
  std::string out = "{\"op\":\"unsubscribed\",";
  AppendTopic(&out, topic);
  out.push_back('}');
  return out;
}

std::string GapFrame(const hub::Topic& topic, std::string_view reason, uint64_t dropped) {
  std::string out = "{\"op\":\"gap\",";
  AppendTopic(&out, topic);
  out.append(",\"reason\":");
  AppendJsonString(&out, reason);
  absl::StrAppend(&out, ",\"dropped\":", dropped, "}");
  return out;
}

std::string ForbiddenFrame(const hub::Topic& topic, std::string_view message) {
  std::string out = "{\"op\":\"error\",\"code\":";
  AppendJsonString(&out, ErrorCodeName(ErrorCode::kForbidden));
  out.push_back(',');
  AppendTopic(&out, topic);
  out.append(",\"message\":");
  AppendJsonString(&out, message);
  out.append(",\"request\":\"subscribe\"}");
  return out;
}

std::string RefusedFrame(const hub::Topic& topic) {
  return ForbiddenFrame(topic, std::string(redis::SubscribeRefusedError(topic).message()));
}

std::string ErrorFrame(ErrorCode code, std::string_view message, std::string_view request) {
  std::string out = "{\"op\":\"error\",\"code\":";
  AppendJsonString(&out, ErrorCodeName(code));
  out.append(",\"message\":");
  AppendJsonString(&out, message);
  if (!request.empty()) {
    out.append(",\"request\":");
    AppendJsonString(&out, request);
  }
  out.push_back('}');
  return out;
}

std::string PongFrame() { return "{\"op\":\"pong\"}"; }

std::string PublishedFrame(std::string_view channel, const hub::PublishResult& result) {
  std::string out = "{\"op\":\"published\",\"channel\":";
  AppendJsonString(&out, channel);
  absl::StrAppend(&out, ",\"receivers\":", result.duplicate ? 0 : result.receivers);
  if (result.duplicate) out.append(",\"duplicate\":true");
  if (result.position.offset > 0) {
    absl::StrAppend(&out, ",\"offset\":", result.position.offset, ",\"epoch\":");
    AppendJsonString(&out, result.position.epoch);
  }
  out.push_back('}');
  return out;
}

std::string HistoryFrame(std::string_view channel, std::string_view id,
                         const hub::HistoryResult& result) {
  std::string out = "{\"op\":\"history\",\"channel\":";
  AppendJsonString(&out, channel);
  if (!id.empty()) {
    out.append(",\"id\":");
    AppendJsonString(&out, id);
  }
  out.append(",\"epoch\":");
  AppendJsonString(&out, result.epoch);
  absl::StrAppend(&out, ",\"offset\":", result.top, ",\"messages\":[");
  for (size_t i = 0; i < result.messages.size(); ++i) {
    const hub::Message& m = *result.messages[i];
    out.append(i > 0 ? ",{" : "{");
    std::string fields;
    AppendPosition(&fields, m);
    AppendData(&fields, m.payload());
    out.append(fields, 1, std::string::npos);  // without the leading comma
    out.push_back('}');
  }
  absl::StrAppend(&out, "],\"history_lost\":", result.history_lost ? "true" : "false",
                  ",\"lost\":", result.lost, "}");
  return out;
}

void AppendWireTextFrame(std::string* out, std::string_view json) {
  const uint64_t n = json.size();
  char header[10];
  size_t header_size = 2;
  header[0] = static_cast<char>(0x81);  // FIN, opcode 1 (text)
  if (n < 126) {
    header[1] = static_cast<char>(n);
  } else if (n <= 0xFFFF) {
    header[1] = 126;
    header[2] = static_cast<char>(n >> 8);
    header[3] = static_cast<char>(n);
    header_size = 4;
  } else {
    header[1] = 127;
    for (int i = 0; i < 8; ++i) header[2 + i] = static_cast<char>(n >> (56 - 8 * i));
    header_size = 10;
  }
  out->append(header, header_size);
  out->append(json);
}

std::string WireTextFrame(std::string_view json) {
  std::string out;
  out.reserve(json.size() + 10);
  AppendWireTextFrame(&out, json);
  return out;
}

std::string MessageWireFrame(const hub::Message& message) {
  return WireTextFrame(MessageFrame(message));
}

}  // namespace bridge::ws
