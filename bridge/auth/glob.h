#ifndef BRIDGE_AUTH_GLOB_H_
#define BRIDGE_AUTH_GLOB_H_

#include <string_view>

#include "absl/status/status.h"

namespace bridge::auth {

// Whether `text` matches the glob `pattern`, written as Redis writes PSUBSCRIBE patterns
// and ACL channel rules: `*` any run of bytes, `?` one byte, `[abc]`, `[^abc]` and `[a-z]`
// one byte of (or not of) a set, `\x` the byte x itself. Bytes compare as unsigned, and a
// `-` before the closing `]` is itself a member. Linear in the pattern times the text: a
// pattern crafted with many stars costs no backtracking explosion.
bool GlobMatch(std::string_view pattern, std::string_view text);

// INVALID_ARGUMENT for a glob that GlobMatch would read other than as written: a `[` with
// no closing `]` (the set would take the rest of the pattern), or a `\` that ends it
// (escaping nothing, it would match a backslash). An access file holding one is refused.
absl::Status ValidateGlob(std::string_view pattern);

}  // namespace bridge::auth

#endif  // BRIDGE_AUTH_GLOB_H_
