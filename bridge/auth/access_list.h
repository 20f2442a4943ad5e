#ifndef BRIDGE_AUTH_ACCESS_LIST_H_
#define BRIDGE_AUTH_ACCESS_LIST_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "bridge/auth/grant.h"

namespace bridge::auth {

// The clients of an access file (`--access_file`), each a token and its grant:
//
//   {"clients": [
//     {"name": "prices-ui", "token": "<at least 16 bytes>", "subscribe": ["prices.*"]},
//     {"name": "pricer", "token": "...", "subscribe": ["orders"], "publish": ["prices.*"]}
//   ]}
//
// Immutable; Access swaps in a new one when the file is read again.
class AccessList {
 public:
  static constexpr size_t kMinTokenBytes = 16;

  // Checks everything: a misspelt key, a duplicate name or token, a short token or a bad
  // glob is an error that says where, so that a typo never opens or closes a door silently.
  static absl::StatusOr<std::shared_ptr<const AccessList>> Parse(std::string_view json);
  static absl::StatusOr<std::shared_ptr<const AccessList>> Load(const std::string& path);

  // The grant of `token`, or null. Every token is compared in full, in time that does not
  // depend on where the bytes differ.
  std::shared_ptr<const Grant> Find(std::string_view token) const;
  size_t size() const { return clients_.size(); }

 private:
  struct Client {
    std::string token;
    std::shared_ptr<const Grant> grant;
  };
  std::vector<Client> clients_;
};

}  // namespace bridge::auth

#endif  // BRIDGE_AUTH_ACCESS_LIST_H_
