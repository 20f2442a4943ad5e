#include "bridge/auth/glob.h"

#include <cstddef>
#include <utility>

namespace bridge::auth {
namespace {

// Matches the one-byte token at pattern[*p] (not a star) against `c` and moves *p past it.
bool MatchOne(std::string_view pattern, size_t* p, char c) {
  const char token = pattern[*p];
  if (token == '?') {
    ++*p;
    return true;
  }
  if (token == '\\' && *p + 1 < pattern.size()) {
    *p += 2;
    return pattern[*p - 1] == c;
  }
  if (token != '[') {
    ++*p;
    return token == c;
  }
  // A set runs to the next unescaped ']'; an unclosed one takes the rest of the pattern,
  // as Redis does.
  size_t i = *p + 1;
  const bool negate = i < pattern.size() && pattern[i] == '^';
  if (negate) ++i;
  bool found = false;
  for (; i < pattern.size() && pattern[i] != ']'; ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      ++i;
      if (pattern[i] == c) found = true;
    } else if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      unsigned char lo = static_cast<unsigned char>(pattern[i]);
      unsigned char hi = static_cast<unsigned char>(pattern[i + 2]);
      if (lo > hi) std::swap(lo, hi);
      const unsigned char u = static_cast<unsigned char>(c);
      if (u >= lo && u <= hi) found = true;
      i += 2;
    } else if (pattern[i] == c) {
      found = true;
    }
  }
  *p = i < pattern.size() ? i + 1 : i;
  return found != negate;
}

}  // namespace

absl::Status ValidateGlob(std::string_view pattern) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      if (i + 1 == pattern.size()) {
        return absl::InvalidArgumentError("a lone \\ ends it (write \\\\ for a backslash)");
      }
      ++i;
    } else if (pattern[i] == '[') {
      // The set runs to the next ']' that is neither escaped nor a range's end, as
      // MatchOne reads it.
      size_t j = i + 1;
      if (j < pattern.size() && pattern[j] == '^') ++j;
      for (; j < pattern.size() && pattern[j] != ']'; ++j) {
        if (pattern[j] == '\\' && j + 1 < pattern.size()) {
          ++j;
        } else if (j + 2 < pattern.size() && pattern[j + 1] == '-' && pattern[j + 2] != ']') {
          j += 2;
        }
      }
      if (j >= pattern.size()) {
        return absl::InvalidArgumentError("a [ is never closed by a ] (write \\[ for a bracket)");
      }
      i = j;
    }
  }
  return absl::OkStatus();
}

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Every token but `*` consumes exactly one byte, so the classic two-cursor walk applies:
  // on a mismatch, go back to just after the last star and let it take one more byte.
  size_t p = 0, t = 0;
  size_t star = std::string_view::npos, star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      star = p;
      star_text = t;
      continue;
    }
    size_t next = p;
    if (p < pattern.size() && MatchOne(pattern, &next, text[t])) {
      p = next;
      ++t;
      continue;
    }
    if (star == std::string_view::npos) return false;
    p = star;
    t = ++star_text;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace bridge::auth
