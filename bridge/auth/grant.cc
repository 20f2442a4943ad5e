#include "bridge/auth/grant.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "bridge/auth/glob.h"

namespace bridge::auth {
namespace {

bool AnyMatches(const std::vector<std::string>& globs, std::string_view channel) {
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& glob) { return GlobMatch(glob, channel); });
}

}  // namespace

bool Grant::MaySubscribeChannel(std::string_view channel) const {
  return AnyMatches(subscribe, channel);
}

bool Grant::MaySubscribePattern(std::string_view pattern) const {
  return std::any_of(subscribe.begin(), subscribe.end(),
                     [&](const std::string& glob) { return glob == "*" || glob == pattern; });
}

absl::Status Grant::CheckSubscribeChannel(std::string_view channel) const {
  if (MaySubscribeChannel(channel)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("this token may not subscribe to channel ",
                   absl::string_view(channel.data(), channel.size())));
}

absl::Status Grant::CheckSubscribePattern(std::string_view pattern) const {
  if (MaySubscribePattern(pattern)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("this token may not subscribe to pattern ",
                   absl::string_view(pattern.data(), pattern.size())));
}

bool Grant::MayPublish(std::string_view channel) const { return AnyMatches(publish, channel); }

const Grant& Grant::Everything() {
  static const Grant* const everything = new Grant{"anyone", {"*"}, {"*"}};
  return *everything;
}

}  // namespace bridge::auth
