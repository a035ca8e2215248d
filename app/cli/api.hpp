// A small C++ layer over <tokenselect.h> for the CLI (not installed): owning handles, failed
// calls as exceptions, and the two-call buffer pattern.
#pragma once
#include <tokenselect.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cli {

// A failed call (or a CLI-side check): main() prints "error: " + what() and exits non-zero.
class Error : public std::runtime_error {
 public:
  Error(ts_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  ts_status status() const { return status_; }

 private:
  ts_status status_;
};

// Throws Error(status, ts_last_error()) unless the call succeeded.
inline void check(ts_status status) {
  if (status == TS_OK) return;
  const std::string msg = ts_last_error();
  throw Error(status, msg.empty() ? ts_status_string(status) : msg);
}

struct ModelFree {
  void operator()(ts_model* m) const { ts_model_free(m); }
};
struct SessionFree {
  void operator()(ts_session* s) const { ts_session_free(s); }
};
// Declare the session after its model so it is freed first.
using ModelPtr = std::unique_ptr<ts_model, ModelFree>;
using SessionPtr = std::unique_ptr<ts_session, SessionFree>;

// Two-call pattern for an array: call(buf, capacity, &needed). `guess` (> 0) is tried first,
// saving the sizing call when it is large enough.
template <class T, class Call>
std::vector<T> fetch_array(Call call, size_t guess = 0) {
  std::vector<T> v(guess);
  size_t needed = 0;
  ts_status s = call(v.empty() ? nullptr : v.data(), v.size(), &needed);
  if (s == TS_TRUNCATED || (s == TS_OK && needed > v.size())) {
    v.resize(needed);
    s = call(v.data(), v.size(), &needed);
  }
  check(s);
  v.resize(needed);
  return v;
}

// Two-call pattern for text (`needed` excludes the NUL).
template <class Call>
std::string fetch_text(Call call) {
  size_t needed = 0;
  ts_status s = call(nullptr, 0, &needed);
  if (s != TS_TRUNCATED) check(s);
  std::string text(needed + 1, '\0');
  check(call(text.data(), text.size(), &needed));
  text.resize(needed);
  return text;
}

inline std::vector<int32_t> tokenize(const ts_model* m, std::string_view text, uint32_t flags) {
  // Byte-level BPE never yields more tokens than bytes; + BOS and a prefix space.
  return fetch_array<int32_t>(
      [&](int32_t* buf, size_t cap, size_t* needed) {
        return ts_tokenize(m, text.data(), text.size(), flags, buf, cap, needed);
      },
      text.size() + 2);
}

inline std::string detokenize(const ts_model* m, const std::vector<int32_t>& tokens, uint32_t flags) {
  return fetch_text([&](char* buf, size_t cap, size_t* needed) {
    return ts_detokenize(m, tokens.data(), tokens.size(), flags, buf, cap, needed);
  });
}

// The metadata value as text; nullopt when the key is absent.
inline std::optional<std::string> metadata(const ts_model* m, const char* key) {
  size_t needed = 0;
  const ts_status s = ts_model_get_metadata(m, key, nullptr, 0, &needed);
  if (s == TS_ERR_INVALID_ARG) return std::nullopt;
  if (s != TS_TRUNCATED) check(s);
  return fetch_text([&](char* buf, size_t cap, size_t* n) { return ts_model_get_metadata(m, key, buf, cap, n); });
}

inline ts_model_info model_info(const ts_model* m) {
  ts_model_info info{};
  info.struct_size = sizeof info;
  check(ts_model_get_info(m, &info));
  return info;
}

inline ts_session_stats session_stats(const ts_session* s) {
  ts_session_stats st{};
  st.struct_size = sizeof st;
  check(ts_session_get_stats(s, &st));
  return st;
}

}  // namespace cli
