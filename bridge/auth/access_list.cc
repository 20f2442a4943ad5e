#include "bridge/auth/access_list.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
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
  for (const json& glob : *it) {
    if (!glob.is_string() || glob.get_ref<const std::string&>().empty()) {
      return Invalid(where, absl::StrCat("\"", key, "\" holds something not a non-empty string"));
    }
    out->push_back(glob.get<std::string>());
  }
  return absl::OkStatus();
}

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
  const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Invalid("access file", "not JSON");
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
    for (char c : secret) {
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
