#ifndef BRIDGE_AUTH_GLOB_H_
#define BRIDGE_AUTH_GLOB_H_

#include <string_view>

namespace bridge::auth {

// Whether `text` matches the glob `pattern`, written as Redis writes PSUBSCRIBE patterns
// and ACL channel rules: `*` any run of bytes, `?` one byte, `[abc]`, `[^abc]` and `[a-z]`
// one byte of (or not of) a set, `\x` the byte x itself. Bytes compare as unsigned, and a
// `-` before the closing `]` is itself a member. Linear in the pattern times the text: a
// pattern crafted with many stars costs no backtracking explosion.
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace bridge::auth

#endif  // BRIDGE_AUTH_GLOB_H_
