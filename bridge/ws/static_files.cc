#include "bridge/ws/static_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace bridge::ws {
namespace {

// The web root is a handful of small files; anything past these is a misconfiguration.
constexpr uintmax_t kMaxFileBytes = 8 << 20;
constexpr uintmax_t kMaxTotalBytes = 32 << 20;

// Whether `path`, once every symlink is resolved, lies under `real_root` with no hidden
// (dot) folder or file on the way.
bool InsideAndVisible(const std::filesystem::path& real_root, const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::path real = std::filesystem::canonical(path, ec);
  if (ec) return false;
  const std::filesystem::path rel = real.lexically_relative(real_root);
  if (rel.empty()) return false;
  for (const std::filesystem::path& part : rel) {
    if (part.string().starts_with(".")) return false;  // "..": outside; ".x": hidden
  }
  return true;
}

}  // namespace

absl::string_view StaticFiles::ContentTypeFor(absl::string_view name) {
  struct Type {
    absl::string_view ext;
    absl::string_view type;
  };
  static constexpr Type kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".md", "text/plain; charset=utf-8"},
  };
  for (const Type& t : kTypes) {
    if (absl::EndsWithIgnoreCase(name, t.ext)) return t.type;
  }
  return "application/octet-stream";
}

absl::Status StaticFiles::Load(const std::string& root) {
  files_.clear();
  if (root.empty()) return absl::OkStatus();
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::InvalidArgumentError(absl::StrFormat("web root %s is not a folder", root));
  }
  // Files are judged by where they really are: a symlink inside the root that leads out of
  // it, or into a hidden folder such as .git, is not served.
  const fs::path real_root = fs::canonical(root, ec);
  if (ec) {
    return absl::InternalError(absl::StrFormat("cannot read web root %s: %s", root, ec.message()));
  }
  uintmax_t total = 0;
  fs::recursive_directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    // The name a client asks for: the entry's own path, symlinks not resolved.
    const fs::path rel = it->path().lexically_relative(root);
    if (rel.filename().string().starts_with(".")) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    if (!InsideAndVisible(real_root, it->path())) continue;
    const uintmax_t size = it->file_size(ec);
    if (ec) break;
    if (size > kMaxFileBytes || (total += size) > kMaxTotalBytes) {
      return absl::InvalidArgumentError(
          absl::StrFormat("web root %s holds too much (%s)", root, it->path().string()));
    }
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    if (!in) {
      return absl::InternalError(absl::StrFormat("cannot read %s", it->path().string()));
    }
    const std::string name = absl::StrCat("/", rel.generic_string());
    files_[name] =
        File{std::string(ContentTypeFor(name)), std::make_shared<const std::string>(body.str())};
  }
  if (ec) {
    return absl::InternalError(absl::StrFormat("cannot read web root %s: %s", root, ec.message()));
  }
  return absl::OkStatus();
}

const StaticFiles::File* StaticFiles::Find(absl::string_view path) const {
  if (path == "/") path = "/index.html";
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

}  // namespace bridge::ws
