// Session state files: the runtime's SessionState plus the conversation as JSON.
#include <nlohmann/json.hpp>
#include <optional>

#include "capi_internal.hpp"
#include "engine/session_state.hpp"

extern "C" {

TS_API ts_status ts_session_save(const ts_session* session, const char* path) {
  return capi::guard("ts_session_save", [&] {
    const ts::Session& s = capi::readable(session);
    capi::require(path, "path");
    if (session->pull) capi::invalid("a pull-style answer is in progress (finish it or call ts_session_end_answer)");
    const nlohmann::json conv = session->conversation ? session->conversation->to_json() : nlohmann::json();
    ts::SessionState::save(s, conv.dump(), path);
    return TS_OK;
  });
}

TS_API ts_status ts_session_load(ts_session* session, const char* path) {
  return capi::guard("ts_session_load", [&] {
    ts::Session& s = capi::writable(session);
    capi::require(path, "path");
    if (session->pull) capi::invalid("a pull-style answer is in progress (finish it or call ts_session_end_answer)");
    // The conversation is parsed and checked before the session changes, like the rest.
    std::optional<ts::Conversation> restored;
    ts::SessionState::load(s, path, [&](const std::string& extra) {
      if (!session->conversation) return;
      const nlohmann::json j = nlohmann::json::parse(extra, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) throw ts::Error(ts::Status::format, std::string(path) + ": malformed conversation block");
      restored = *session->conversation;
      if (j.is_null()) restored->reset();
      else restored->from_json(j);
    });
    if (restored) *session->conversation = std::move(*restored);
    return TS_OK;
  });
}

}  // extern "C"
