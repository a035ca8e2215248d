// What the C API's entry points share: the handle structs, the exception-to-status guard, and
// helpers for option structs, out-parameters and caller-owned buffers.
#pragma once
#include <tokenselect.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/conversation.hpp"
#include "engine/generation.hpp"
#include "engine/session.hpp"
#include "model/model.hpp"
#include "util/error.hpp"

struct ts_model {
  std::shared_ptr<const ts::Model> model;
  std::string arch, name, chat_format;  // what ts_model_info points at
  ts_log_fn log = nullptr;
  void* log_user_data = nullptr;
  int32_t log_level = TS_LOG_INFO;
  uint64_t n_params = 0;
};

struct ts_session {
  const ts_model* owner = nullptr;
  std::unique_ptr<ts::Session> session;
  std::unique_ptr<ts::Conversation> conversation;
  std::unique_ptr<ts::Generation> pull;  // a pull-style answer in progress
  std::string pull_piece;                // what ts_session_next_token lent out
  bool busy = false;                     // inside a long call: only const calls are allowed
};

namespace capi {

// Sets this thread's ts_last_error() to "fn: message".
void set_error(const char* fn, std::string_view message);
// Logs through the model's callback when its level allows.
void log(const ts_model* m, int32_t level, const std::string& message);

// Runs an entry point's body: ts::Error becomes its status, std::bad_alloc TS_ERR_OUT_OF_MEMORY,
// anything else TS_ERR_INTERNAL; every failure sets ts_last_error().
template <typename F>
ts_status guard(const char* fn, F&& body) noexcept {
  try {
    return body();
  } catch (const ts::Error& e) {
    set_error(fn, e.what());
    return static_cast<ts_status>(e.status());
  } catch (const std::bad_alloc&) {
    set_error(fn, "out of memory");
    return TS_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error(fn, std::string("internal error: ") + e.what());
    return TS_ERR_INTERNAL;
  } catch (...) {
    set_error(fn, "internal error: unknown exception");
    return TS_ERR_INTERNAL;
  }
}

[[noreturn]] void invalid(const std::string& message);

inline void require(const void* p, const char* name) {
  if (!p) invalid(std::string(name) + " is NULL");
}

// A session usable for a changing call: not NULL and not inside one of its own callbacks.
ts::Session& writable(ts_session* s);
const ts::Session& readable(const ts_session* s);

// Options: defaults from init(), then the caller's first struct_size bytes (older callers
// leave the tail at its default; newer callers' extra fields are ignored). `min_size` is the
// end of the first field after struct_size.
template <typename T>
T read_options(const T* in, void (*init)(T*), size_t min_size, const char* what) {
  T out;
  init(&out);
  if (!in) return out;
  if (in->struct_size < min_size)
    invalid(std::string(what) + ": struct_size " + std::to_string(in->struct_size) + " is too small (did you call the _init function?)");
  std::memcpy(static_cast<void*>(&out), in, std::min<size_t>(in->struct_size, sizeof(T)));
  out.struct_size = sizeof(T);
  return out;
}

// Output structs: the first struct_size bytes of `full` go to the caller, whose struct_size stays.
template <typename T>
void write_struct(T* out, const T& full, size_t min_size, const char* what) {
  require(out, what);
  if (out->struct_size < min_size)
    invalid(std::string(what) + ": struct_size " + std::to_string(out->struct_size) + " is too small");
  const uint32_t size = out->struct_size;
  std::memcpy(static_cast<void*>(out), &full, std::min<size_t>(size, sizeof(T)));
  out->struct_size = size;
}

// The two-call pattern for arrays: NULL or capacity 0 asks for the count (TS_OK); too small
// copies what fits and returns TS_TRUNCATED. `needed` may be NULL only when data is given.
template <typename T>
ts_status put_array(const T* src, size_t n, T* dst, size_t capacity, size_t* needed) {
  if (!dst || capacity == 0) {
    require(needed, "needed");
    *needed = n;
    return TS_OK;
  }
  if (needed) *needed = n;
  if (n > 0) std::memcpy(dst, src, std::min(n, capacity) * sizeof(T));
  return n <= capacity ? TS_OK : TS_TRUNCATED;
}

// The same for text: NUL-terminated when capacity > 0, cut at a UTF-8 character boundary.
ts_status put_text(std::string_view text, char* buf, size_t capacity, size_t* needed);

ts_stop_reason stop_reason(ts::StopReason r);

}  // namespace capi
