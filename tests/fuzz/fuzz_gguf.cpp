// libFuzzer target for the GGUF reader: any input must either parse, after which every accessor
// is safe on every entry and tensor, or throw ts::Error. Anything else (a crash, a sanitizer
// report, another exception type, a huge allocation) is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/gguf_file.hpp"
#include "util/error.hpp"

namespace {

// Calls a typed getter; type mismatches are expected to throw ts::Error.
template <typename Fn>
void try_get(Fn&& fn) {
  try {
    fn();
  } catch (const ts::Error&) {
  }
}

volatile uint64_t g_sink;  // keeps reads from being optimised away

void exercise(const ts::gguf::File& f) {
  for (const auto& entry : f.metadata()) {
    const std::string& key = entry.first;  // not a structured binding: clang 14 cannot capture those
    try_get([&] { g_sink = g_sink + f.get_u64(key).value_or(0); });
    try_get([&] { g_sink = g_sink + uint64_t(f.get_i64(key).value_or(0)); });
    try_get([&] { g_sink = g_sink + uint64_t(f.get_f64(key).value_or(0) != 0); });
    try_get([&] { g_sink = g_sink + f.get_bool(key).value_or(false); });
    try_get([&] { g_sink = g_sink + f.get_string(key).value_or("").size(); });
    try_get([&] {
      for (std::string_view s : f.get_string_array(key).value_or(std::vector<std::string_view>{}))
        if (!s.empty()) g_sink = g_sink + uint8_t(s.front()) + uint8_t(s.back());
    });
    try_get([&] { g_sink = g_sink + f.get_f32_array(key).value_or(std::vector<float>{}).size(); });
    try_get([&] { g_sink = g_sink + f.get_i32_array(key).value_or(std::vector<int32_t>{}).size(); });
  }
  for (const auto& t : f.tensors()) {
    // Touch the first and last byte: ASan flags anything outside the input buffer.
    g_sink = g_sink + t.data[0] + t.data[t.nbytes - 1] + uint64_t(t.n_elements());
    if (f.find_tensor(t.name) != &t) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = ts::gguf::File::from_memory(std::span<const uint8_t>(data, size), "fuzz.gguf");
    exercise(*f);
  } catch (const ts::Error&) {
  }
  return 0;
}
