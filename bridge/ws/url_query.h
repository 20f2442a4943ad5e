#ifndef BRIDGE_WS_URL_QUERY_H_
#define BRIDGE_WS_URL_QUERY_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bridge::ws {

// Decodes %XX escapes and '+' (as a space, the form encoding browsers use in queries);
// nullopt for a malformed escape.
std::optional<std::string> UrlDecode(std::string_view s);

// A request target split into its path and its decoded query parameters, in order.
struct RequestTarget {
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;
};

// nullopt when the path or a parameter is not well encoded.
std::optional<RequestTarget> ParseTarget(std::string_view target);

}  // namespace bridge::ws

#endif  // BRIDGE_WS_URL_QUERY_H_
