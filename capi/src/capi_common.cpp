// Status strings, the thread-local last error, versions, logging and buffer helpers.
#include <string>

#include "capi_internal.hpp"

// ts::Status and ts_status are the same numbers, so an Error's status crosses as is.
static_assert(int(ts::Status::invalid_arg) == TS_ERR_INVALID_ARG && int(ts::Status::io) == TS_ERR_IO &&
              int(ts::Status::format) == TS_ERR_FORMAT && int(ts::Status::unsupported) == TS_ERR_UNSUPPORTED &&
              int(ts::Status::out_of_memory) == TS_ERR_OUT_OF_MEMORY &&
              int(ts::Status::context_full) == TS_ERR_CONTEXT_FULL && int(ts::Status::cancelled) == TS_CANCELLED &&
              int(ts::Status::truncated) == TS_TRUNCATED && int(ts::Status::internal) == TS_ERR_INTERNAL);

namespace capi {
namespace {
thread_local std::string last_error;
}

void set_error(const char* fn, std::string_view message) {
  try {
    last_error.assign(fn).append(": ").append(message);
  } catch (...) {
    last_error.clear();
  }
}

void invalid(const std::string& message) { throw ts::Error(ts::Status::invalid_arg, message); }

void log(const ts_model* m, int32_t level, const std::string& message) {
  if (m && m->log && level <= m->log_level) m->log(level, message.c_str(), m->log_user_data);
}

ts::Session& writable(ts_session* s) {
  require(s, "session");
  if (s->busy) invalid("the session is busy: only const functions may be called from its callbacks");
  return *s->session;
}

const ts::Session& readable(const ts_session* s) {
  require(s, "session");
  return *s->session;
}

ts_status put_text(std::string_view text, char* buf, size_t capacity, size_t* needed) {
  if (!buf || capacity == 0) {
    require(needed, "needed");
    *needed = text.size();
    return TS_OK;
  }
  if (needed) *needed = text.size();
  size_t n = std::min(text.size(), capacity - 1);
  while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;  // whole characters
  std::memcpy(buf, text.data(), n);
  buf[n] = '\0';
  return n == text.size() ? TS_OK : TS_TRUNCATED;
}

ts_stop_reason stop_reason(ts::StopReason r) {
  switch (r) {
    case ts::StopReason::end_of_generation: return TS_STOP_END_OF_GENERATION;
    case ts::StopReason::stop_string: return TS_STOP_STOP_STRING;
    case ts::StopReason::max_tokens: return TS_STOP_MAX_TOKENS;
    case ts::StopReason::callback: return TS_STOP_CALLBACK;
    case ts::StopReason::cancelled: return TS_STOP_CANCELLED;
    case ts::StopReason::context_full: return TS_STOP_CONTEXT_FULL;
  }
  return TS_STOP_NONE;
}

}  // namespace capi

extern "C" {

TS_API const char* ts_status_string(ts_status status) {
  switch (status) {
    case TS_OK: return "TS_OK: success";
    case TS_ERR_INVALID_ARG: return "TS_ERR_INVALID_ARG: invalid argument or call";
    case TS_ERR_IO: return "TS_ERR_IO: input/output error";
    case TS_ERR_FORMAT: return "TS_ERR_FORMAT: malformed file";
    case TS_ERR_UNSUPPORTED: return "TS_ERR_UNSUPPORTED: not supported by this build";
    case TS_ERR_OUT_OF_MEMORY: return "TS_ERR_OUT_OF_MEMORY: out of memory";
    case TS_ERR_CONTEXT_FULL: return "TS_ERR_CONTEXT_FULL: the context is full";
    case TS_CANCELLED: return "TS_CANCELLED: cancelled";
    case TS_TRUNCATED: return "TS_TRUNCATED: buffer too small";
    case TS_ERR_INTERNAL: return "TS_ERR_INTERNAL: internal error";
  }
  return "unknown status";
}

TS_API const char* ts_last_error(void) { return capi::last_error.c_str(); }

TS_API int32_t ts_version_number(void) { return TS_VERSION_NUMBER; }

#define TS_STR2(x) #x
#define TS_STR(x) TS_STR2(x)
TS_API const char* ts_version_string(void) {
  return TS_STR(TS_VERSION_MAJOR) "." TS_STR(TS_VERSION_MINOR) "." TS_STR(TS_VERSION_PATCH);
}

}  // extern "C"
