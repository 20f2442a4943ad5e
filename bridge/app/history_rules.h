#ifndef BRIDGE_APP_HISTORY_RULES_H_
#define BRIDGE_APP_HISTORY_RULES_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "bridge/hub/history.h"

namespace bridge {

// Which channels are durable, from --history: comma-separated `glob=max_len/ttl` rules
// (Redis' PSUBSCRIBE glob syntax; ttl as 30m, 24h, 7d..; `/ttl` may be left out for 24h),
// e.g. "orders.*=1000/24h,chat.*=100/1h". The first rule whose glob matches a channel
// gives its policy.
class HistoryRules {
 public:
  // INVALID_ARGUMENT naming the bad rule. An empty text: no durable channel.
  static absl::StatusOr<HistoryRules> Parse(std::string_view text);

  std::optional<hub::HistoryPolicy> For(std::string_view channel) const;
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    std::string glob;
    hub::HistoryPolicy policy;
  };
  std::vector<Rule> rules_;
};

}  // namespace bridge

#endif  // BRIDGE_APP_HISTORY_RULES_H_
