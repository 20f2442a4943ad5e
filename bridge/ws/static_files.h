#ifndef BRIDGE_WS_STATIC_FILES_H_
#define BRIDGE_WS_STATIC_FILES_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace bridge::ws {

// The files of the web root, read into memory once. Serving only names that were found
// by walking the folder leaves no room for directory traversal, and keeps file reads
// off the event loop. Immutable after Load; shared by every HTTP session.
class StaticFiles {
 public:
  struct File {
    std::string content_type;
    std::shared_ptr<const std::string> body;
  };

  // Reads every regular, non-hidden file below `root`. An empty root loads nothing.
  absl::Status Load(const std::string& root);

  // The file for a URL path ("/" means "/index.html"), or null.
  const File* Find(absl::string_view path) const;

  static absl::string_view ContentTypeFor(absl::string_view name);

 private:
  absl::flat_hash_map<std::string, File> files_;
};

}  // namespace bridge::ws

#endif  // BRIDGE_WS_STATIC_FILES_H_
