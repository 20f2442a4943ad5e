#ifndef BRIDGE_AUTH_ACCESS_H_
#define BRIDGE_AUTH_ACCESS_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "bridge/auth/access_list.h"
#include "bridge/auth/grant.h"

namespace bridge::auth {

// Who may do what, for both front ends. Without an access file every client may do
// everything (Grant::Everything); with one, a client presents a bearer token and gets the
// grant of that token, or is refused. Load (again, on SIGHUP) swaps in the file's new
// contents for the requests that come after; a stream or socket keeps the grant it
// connected with. Thread-safe.
class Access {
 public:
  // An empty path: no access control.
  explicit Access(std::string path);
  // The rules of a server without an access file, for front ends given none.
  static const Access& Open();

  // Reads the file. On an error the rules in force stay as they were.
  absl::Status Load() ABSL_LOCKS_EXCLUDED(mu_);
  bool enabled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // The grant for a request that presented `token` (nullopt: none). UNAUTHENTICATED when a
  // token is needed and is missing or unknown.
  absl::StatusOr<std::shared_ptr<const Grant>> Authenticate(
      std::optional<std::string_view> token) const ABSL_LOCKS_EXCLUDED(mu_);

  // The token of an HTTP `Authorization: Bearer <token>` header value, if it is one.
  static std::optional<std::string_view> BearerToken(std::string_view authorization);

 private:
  const std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const AccessList> list_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bridge::auth

#endif  // BRIDGE_AUTH_ACCESS_H_
