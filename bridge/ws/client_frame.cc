#include "bridge/ws/client_frame.h"

#include <type_traits>
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

std::optional<ClientError> CheckName(std::string_view field, const std::string& s,
                                     const ClientFrameLimits& limits) {
  if (s.empty())
    return Error(ErrorCode::kBadChannel, absl::StrFormat("empty name in \"%s\"", field));
  if (s.size() > limits.max_name_length) {
    return Error(ErrorCode::kBadChannel,
                 absl::StrFormat("a name in \"%s\" is %d bytes, the limit is %d", field, s.size(),
                                 limits.max_name_length));
  }
  return std::nullopt;
}

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
    if (auto e = CheckName(field, s, limits)) return e;
    out->push_back(s);
  }
  return std::nullopt;
}

// Reads {"offset":N,"epoch":"e"}, as in "resume" and "since".
std::optional<ClientError> ReadPosition(const Json& value, std::string_view field,
                                        hub::StreamPosition* out) {
  if (!value.is_object()) {
    return Error(ErrorCode::kBadField,
                 absl::StrFormat("\"%s\" needs {\"offset\":N,\"epoch\":\"...\"}", field));
  }
  auto offset = value.find("offset");
  if (offset != value.end() && !offset->is_null()) {
    if (!offset->is_number_unsigned()) {
      return Error(ErrorCode::kBadField,
                   absl::StrFormat("an offset in \"%s\" must be a whole number", field));
    }
    out->offset = offset->get<uint64_t>();
  }
  auto epoch = value.find("epoch");
  if (epoch != value.end() && !epoch->is_null()) {
    if (!epoch->is_string() || epoch->get_ref<const std::string&>().size() > 64) {
      return Error(
          ErrorCode::kBadField,
          absl::StrFormat("an epoch in \"%s\" must be a string of at most 64 bytes", field));
    }
    out->epoch = epoch->get<std::string>();
  }
  return std::nullopt;
}

std::optional<ClientError> ReadResume(const Json& frame, const ClientFrameLimits& limits,
                                      SubscribeCommand* command) {
  auto it = frame.find("resume");
  if (it == frame.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) {
    return Error(ErrorCode::kBadField,
                 "\"resume\" must be an object of channel -> {\"offset\",\"epoch\"}");
  }
  if (it->size() > limits.max_names) {
    return Error(
        ErrorCode::kTooManySubscriptions,
        absl::StrFormat("\"resume\" has %d names, the limit is %d", it->size(), limits.max_names));
  }
  for (const auto& [name, value] : it->items()) {
    if (auto e = CheckName("resume", name, limits)) return e;
    hub::StreamPosition position;
    if (auto e = ReadPosition(value, "resume", &position)) return e;
    command->resume.emplace_back(name, std::move(position));
  }
  return std::nullopt;
}

template <typename Command>
ClientFrame ParseTopics(const Json& frame, const ClientFrameLimits& limits) {
  Command command;
  if (auto e = ReadNames(frame, "channels", limits, &command.channels)) return *std::move(e);
  if (auto e = ReadNames(frame, "patterns", limits, &command.patterns)) return *std::move(e);
  size_t resumed = 0;
  if constexpr (std::is_same_v<Command, SubscribeCommand>) {
    if (auto e = ReadResume(frame, limits, &command)) return *std::move(e);
    resumed = command.resume.size();
  }
  if (command.channels.empty() && command.patterns.empty() && resumed == 0) {
    return Error(ErrorCode::kBadField, "give at least one of \"channels\" and \"patterns\"");
  }
  if (command.channels.size() + command.patterns.size() + resumed > limits.max_names) {
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

ClientFrame ParseHistory(const Json& frame, const ClientFrameLimits& limits) {
  HistoryCommand command;
  if (auto id = frame.find("id"); id != frame.end() && !id->is_null()) {
    if (!id->is_string() || id->get_ref<const std::string&>().size() > 64) {
      return Error(ErrorCode::kBadField, "\"id\" must be a string of at most 64 bytes");
    }
    command.id = id->get<std::string>();
  }
  auto channel = frame.find("channel");
  if (channel == frame.end() || !channel->is_string()) {
    return Error(ErrorCode::kBadField, "\"channel\" must be a string");
  }
  command.channel = channel->get<std::string>();
  if (auto e = CheckName("channel", command.channel, limits)) return *std::move(e);
  if (auto limit = frame.find("limit"); limit != frame.end() && !limit->is_null()) {
    if (!limit->is_number_unsigned()) {
      return Error(ErrorCode::kBadField, "\"limit\" must be a whole number");
    }
    command.limit = limit->get<size_t>();
  }
  if (auto since = frame.find("since"); since != frame.end() && !since->is_null()) {
    hub::StreamPosition position;
    if (auto e = ReadPosition(*since, "since", &position)) return *std::move(e);
    command.since = std::move(position);
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
  if (name == "history") {
    ClientFrame history = ParseHistory(frame, limits);
    if (auto* error = std::get_if<ClientError>(&history)) error->history = true;
    return history;
  }
  // Echo a bounded prefix only: the op is the client's input.
  return Error(ErrorCode::kUnknownOp,
               absl::StrFormat("unknown op \"%s\"", absl::CEscape(name.substr(0, 32))));
}

}  // namespace bridge::ws
