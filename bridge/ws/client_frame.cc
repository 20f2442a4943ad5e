#include "bridge/ws/client_frame.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "bridge/hub/upstream.h"
#include "nlohmann/json.hpp"

namespace bridge::ws {
namespace {

using Json = nlohmann::json;

// Deeper JSON than any valid frame needs is refused before nlohmann sees it, so a
// hostile frame cannot make the parser or the value's destructor work hard.
constexpr int kMaxDepth = 8;

bool TooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

ClientError Error(ErrorCode code, std::string message) { return {code, std::move(message)}; }

// Reads an optional array of names into `out`; returns an error, or nothing.
std::optional<ClientError> ReadNames(const Json& frame, const char* field,
                                     const ClientFrameLimits& limits,
                                     std::vector<std::string>* out) {
  auto it = frame.find(field);
  if (it == frame.end() || it->is_null()) return std::nullopt;
  if (!it->is_array()) {
    return Error(ErrorCode::kBadField,
                 absl::StrFormat("\"%s\" must be an array of strings", field));
  }
  if (it->size() > limits.max_names) {
    return Error(ErrorCode::kTooManySubscriptions,
                 absl::StrFormat("\"%s\" has %d names, the limit is %d", field, it->size(),
                                 limits.max_names));
  }
  out->reserve(it->size());
  for (const Json& name : *it) {
    if (!name.is_string()) {
      return Error(ErrorCode::kBadField,
                   absl::StrFormat("\"%s\" must be an array of strings", field));
    }
    const auto& s = name.get_ref<const std::string&>();
    if (s.empty()) {
      return Error(ErrorCode::kBadChannel, absl::StrFormat("empty name in \"%s\"", field));
    }
    if (s.size() > limits.max_name_length) {
      return Error(ErrorCode::kBadChannel,
                   absl::StrFormat("a name in \"%s\" is %d bytes, the limit is %d", field, s.size(),
                                   limits.max_name_length));
    }
    out->push_back(s);
  }
  return std::nullopt;
}

template <typename Command>
ClientFrame ParseTopics(const Json& frame, const ClientFrameLimits& limits) {
  Command command;
  if (auto e = ReadNames(frame, "channels", limits, &command.channels)) return *std::move(e);
  if (auto e = ReadNames(frame, "patterns", limits, &command.patterns)) return *std::move(e);
  if (command.channels.empty() && command.patterns.empty()) {
    return Error(ErrorCode::kBadField, "give at least one of \"channels\" and \"patterns\"");
  }
  if (command.channels.size() + command.patterns.size() > limits.max_names) {
    return Error(ErrorCode::kTooManySubscriptions,
                 absl::StrFormat("the frame names more than %d topics", limits.max_names));
  }
  return command;
}

ClientFrame ParsePublish(const Json& frame, const ClientFrameLimits& limits) {
  PublishCommand command;
  auto channel = frame.find("channel");
  if (channel == frame.end() || !channel->is_string()) {
    return Error(ErrorCode::kBadField, "\"channel\" must be a string");
  }
  command.channel = channel->get<std::string>();
  if (command.channel.empty()) return Error(ErrorCode::kBadChannel, "empty channel name");
  if (command.channel.size() > limits.max_name_length) {
    return Error(ErrorCode::kBadChannel,
                 absl::StrFormat("channel name is %d bytes, the limit is %d",
                                 command.channel.size(), limits.max_name_length));
  }
  auto data = frame.find("data");
  auto data_b64 = frame.find("data_b64");
  const bool has_data = data != frame.end() && !data->is_null();
  const bool has_b64 = data_b64 != frame.end() && !data_b64->is_null();
  if (has_data == has_b64) {
    return Error(ErrorCode::kBadField, "give exactly one of \"data\" and \"data_b64\"");
  }
  if (has_data) {
    if (!data->is_string()) return Error(ErrorCode::kBadField, "\"data\" must be a string");
    command.payload = data->get<std::string>();
  } else {
    if (!data_b64->is_string() ||
        !absl::Base64Unescape(data_b64->get_ref<const std::string&>(), &command.payload)) {
      return Error(ErrorCode::kBadField, "\"data_b64\" must be a base64 string");
    }
  }
  if (auto key = frame.find("idempotency_key"); key != frame.end() && !key->is_null()) {
    if (!key->is_string()) {
      return Error(ErrorCode::kBadField, "\"idempotency_key\" must be a string");
    }
    command.idempotency_key = key->get<std::string>();
    if (command.idempotency_key.size() > hub::Upstream::kMaxPublishKeyBytes) {
      return Error(
          ErrorCode::kBadField,
          absl::StrFormat("\"idempotency_key\" is %d bytes, the limit is %d",
                          command.idempotency_key.size(), hub::Upstream::kMaxPublishKeyBytes));
    }
  }
  return command;
}

}  // namespace

ClientFrame ParseClientFrame(std::string_view text, const ClientFrameLimits& limits) {
  if (TooDeep(text)) return Error(ErrorCode::kBadJson, "JSON nested too deeply");
  Json frame = Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (frame.is_discarded()) return Error(ErrorCode::kBadJson, "not valid JSON");
  if (!frame.is_object()) return Error(ErrorCode::kBadJson, "a frame must be a JSON object");
  auto op = frame.find("op");
  if (op == frame.end() || !op->is_string()) {
    return Error(ErrorCode::kUnknownOp, "\"op\" must be a string");
  }
  const auto& name = op->get_ref<const std::string&>();
  if (name == "subscribe") return ParseTopics<SubscribeCommand>(frame, limits);
  if (name == "unsubscribe") return ParseTopics<UnsubscribeCommand>(frame, limits);
  if (name == "publish") {
    ClientFrame publish = ParsePublish(frame, limits);
    if (auto* error = std::get_if<ClientError>(&publish)) error->publish = true;
    return publish;
  }
  if (name == "ping") return PingCommand{};
  // Echo a bounded prefix only: the op is the client's input.
  return Error(ErrorCode::kUnknownOp,
               absl::StrFormat("unknown op \"%s\"", absl::CEscape(name.substr(0, 32))));
}

}  // namespace bridge::ws
