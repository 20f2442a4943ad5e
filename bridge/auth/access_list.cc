#include "bridge/auth/access_list.h"

#include <fstream>
#include <functional>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "bridge/auth/glob.h"
#include "nlohmann/json.hpp"

namespace bridge::auth {
namespace {

using nlohmann::json;

absl::Status Invalid(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::Status ReadGlobs(const json& client, const char* key, absl::string_view where,
                       std::vector<std::string>* out) {
  auto it = client.find(key);
  if (it == client.end()) return absl::OkStatus();
  if (!it->is_array()) return Invalid(where, absl::StrCat("\"", key, "\" is not a list"));
  for (size_t i = 0; i < it->size(); ++i) {
    const json& glob = (*it)[i];
    if (!glob.is_string() || glob.get_ref<const std::string&>().empty()) {
      return Invalid(where, absl::StrCat("\"", key, "\" holds something not a non-empty string"));
    }
    const std::string& text = glob.get_ref<const std::string&>();
    if (absl::Status st = ValidateGlob(text); !st.ok()) {
      return Invalid(where, absl::StrCat("\"", key, "\"[", i, "] \"", text, "\": ", st.message()));
    }
    out->push_back(text);
  }
  return absl::OkStatus();
}

// Finds keys given twice in one object, which nlohmann's parser would silently resolve
// to the last one: a second "subscribe" must not quietly replace the first. Follows the
// parser's events to name the object, as `clients[1]`.
class DuplicateKeyFinder {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        EnterValue();
        frames_.push_back({event == json::parse_event_t::array_start, 0, {}, {}});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case json::parse_event_t::key: {
        if (frames_.empty()) break;
        Frame& object = frames_.back();
        object.key = parsed.get<std::string>();
        if (!object.keys.insert(object.key).second && error_.ok()) {
          const std::string where = PathTo(frames_.size() - 1);
          error_ = Invalid(where.empty() ? "access file" : where,
                           absl::StrCat("key \"", object.key, "\" given twice"));
        }
        break;
      }
      case json::parse_event_t::value:
        EnterValue();
        break;
    }
    return true;
  }

  const absl::Status& error() const { return error_; }

 private:
  struct Frame {
    bool array;
    // In an array: the elements begun so far, the last one being the one parsed now.
    size_t elements;
    absl::flat_hash_set<std::string> keys;
    std::string key;
  };

  void EnterValue() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().elements;
  }

  // Where the value of frames_[depth] sits, as `clients[1]`; empty at the top.
  std::string PathTo(size_t depth) const {
    std::string path;
    for (size_t i = 0; i < depth; ++i) {
      const Frame& f = frames_[i];
      if (f.array) {
        absl::StrAppend(&path, "[", f.elements - 1, "]");
      } else {
        absl::StrAppend(&path, path.empty() ? "" : ".", f.key);
      }
    }
    return path;
  }

  std::vector<Frame> frames_;
  absl::Status error_;
};

// Byte-wise comparison that looks at every byte of `secret` whatever `given` is.
bool SameSecret(std::string_view secret, std::string_view given) {
  unsigned char diff = secret.size() == given.size() ? 0 : 1;
  for (size_t i = 0; i < secret.size(); ++i) {
    diff |= static_cast<unsigned char>(secret[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const AccessList>> AccessList::Parse(std::string_view text) {
  DuplicateKeyFinder duplicates;
  const json doc = json::parse(text.begin(), text.end(), std::ref(duplicates),
                               /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Invalid("access file", "not JSON");
  if (!duplicates.error().ok()) return duplicates.error();
  if (!doc.is_object()) return Invalid("access file", "not a JSON object");
  for (const auto& [key, value] : doc.items()) {
    if (key != "clients") return Invalid("access file", absl::StrCat("unknown key \"", key, "\""));
  }
  auto clients = doc.find("clients");
  if (clients == doc.end() || !clients->is_array()) {
    return Invalid("access file", "\"clients\" is missing or not a list");
  }
  auto list = std::make_shared<AccessList>();
  absl::flat_hash_set<std::string> names, tokens;
  for (size_t i = 0; i < clients->size(); ++i) {
    const json& client = (*clients)[i];
    std::string where = absl::StrCat("clients[", i, "]");
    if (!client.is_object()) return Invalid(where, "not an object");
    for (const auto& [key, value] : client.items()) {
      if (key != "name" && key != "token" && key != "subscribe" && key != "publish") {
        return Invalid(where, absl::StrCat("unknown key \"", key, "\""));
      }
    }
    auto name = client.find("name");
    if (name == client.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
      return Invalid(where, "\"name\" is missing or not a non-empty string");
    }
    absl::StrAppend(&where, " (", name->get_ref<const std::string&>(), ")");
    if (!names.insert(name->get<std::string>()).second)
      return Invalid(where, "a second client of this name");
    auto token = client.find("token");
    if (token == client.end() || !token->is_string()) {
      return Invalid(where, "\"token\" is missing or not a string");
    }
    const std::string& secret = token->get_ref<const std::string&>();
    if (secret.size() < kMinTokenBytes) {
      return Invalid(where, absl::StrCat("the token is shorter than ", kMinTokenBytes, " bytes"));
    }
    for (unsigned char c : secret) {
      // gRPC metadata and HTTP headers carry printable ASCII only.
      if (c >= 0x80) return Invalid(where, "the token holds a byte that is not ASCII");
      if (c <= ' ' || c == 0x7f) return Invalid(where, "the token holds a space or a control byte");
    }
    if (!tokens.insert(secret).second) return Invalid(where, "the token of another client too");
    auto grant = std::make_shared<Grant>();
    grant->name = name->get<std::string>();
    if (absl::Status st = ReadGlobs(client, "subscribe", where, &grant->subscribe); !st.ok()) {
      return st;
    }
    if (absl::Status st = ReadGlobs(client, "publish", where, &grant->publish); !st.ok()) {
      return st;
    }
    list->clients_.push_back({secret, std::move(grant)});
  }
  return std::shared_ptr<const AccessList>(std::move(list));
}

absl::StatusOr<std::shared_ptr<const AccessList>> AccessList::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the access file ", path));
  std::ostringstream text;
  text << in.rdbuf();
  auto list = Parse(text.str());
  if (!list.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", list.status().message()));
  }
  return list;
}

std::shared_ptr<const Grant> AccessList::Find(std::string_view token) const {
  std::shared_ptr<const Grant> found;
  for (const Client& client : clients_) {
    if (SameSecret(client.token, token)) found = client.grant;
  }
  return found;
}

}  // namespace bridge::auth
