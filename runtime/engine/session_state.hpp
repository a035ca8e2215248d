// Session state files: the tokens, KV cache, last logits, attention settings and selection cache
// of a Session, plus an opaque block of the caller's own state (the C API stores the
// conversation there), so that a loaded session continues exactly where the saved one stopped.
#pragma once
#include <functional>
#include <string>

#include "engine/session.hpp"

namespace ts {

class SessionState {
 public:
  // Writes the whole file to `path`.tmp and renames it over `path`. Throws Error(io).
  static void save(const Session& s, const std::string& extra, const std::string& path);
  // Loads a file written by save() for the same model into `s`. Every header field, the file's
  // size and (through check_extra, which may throw) the `extra` block are checked before `s`
  // changes: Error(io) when unreadable, Error(format) when malformed or truncated,
  // Error(invalid_arg) for another model, Error(context_full) when the tokens exceed the
  // session's capacity.
  static void load(Session& s, const std::string& path, const std::function<void(const std::string& extra)>& check_extra);
};

}  // namespace ts
