#include "bridge/app/history_rules.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "bridge/auth/glob.h"

namespace bridge {
namespace {

// Redis Streams trim with MAXLEN; past this the history is a database, not a buffer.
constexpr uint64_t kMaxLen = 10'000'000;

absl::Status Bad(absl::string_view rule, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrFormat(
      "--history rule \"%s\": %s (expected glob=max_len/ttl, e.g. orders.*=1000/24h)", rule, why));
}

}  // namespace

absl::StatusOr<HistoryRules> HistoryRules::Parse(std::string_view text) {
  HistoryRules out;
  for (absl::string_view rule :
       absl::StrSplit(absl::string_view(text.data(), text.size()), ',', absl::SkipWhitespace())) {
    rule = absl::StripAsciiWhitespace(rule);
    const size_t eq = rule.rfind('=');
    if (eq == absl::string_view::npos || eq == 0) return Bad(rule, "no glob= before the sizes");
    Rule r;
    r.glob = std::string(rule.substr(0, eq));
    if (absl::Status st = auth::ValidateGlob(r.glob); !st.ok()) return Bad(rule, st.message());
    absl::string_view sizes = rule.substr(eq + 1);
    absl::string_view len = sizes;
    absl::string_view ttl;
    if (const size_t slash = sizes.find('/'); slash != absl::string_view::npos) {
      len = sizes.substr(0, slash);
      ttl = sizes.substr(slash + 1);
    }
    if (!absl::SimpleAtoi(len, &r.policy.max_len) || r.policy.max_len == 0 ||
        r.policy.max_len > kMaxLen) {
      return Bad(rule, absl::StrFormat("max_len must be a number from 1 to %d", kMaxLen));
    }
    if (!ttl.empty()) {
      // absl durations stop at hours; days are what history TTLs are often given in.
      absl::string_view days = ttl;
      uint64_t d = 0;
      if (absl::ConsumeSuffix(&days, "d") && absl::SimpleAtoi(days, &d)) {
        r.policy.ttl = absl::Hours(24) * static_cast<int64_t>(d);
      } else if (!absl::ParseDuration(ttl, &r.policy.ttl)) {
        return Bad(rule, "ttl must be a duration such as 90s, 30m, 24h or 7d");
      }
      if (r.policy.ttl < absl::Seconds(1)) return Bad(rule, "ttl must be at least 1s");
    }
    out.rules_.push_back(std::move(r));
  }
  return out;
}

std::optional<hub::HistoryPolicy> HistoryRules::For(std::string_view channel) const {
  for (const Rule& r : rules_) {
    if (auth::GlobMatch(r.glob, channel)) return r.policy;
  }
  return std::nullopt;
}

}  // namespace bridge
