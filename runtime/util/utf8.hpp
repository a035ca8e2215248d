// UTF-8 validation: the library accepts only whole, valid UTF-8 text.
#pragma once
#include <cstddef>
#include <optional>
#include <string_view>

namespace ts {

// Offset of the first invalid UTF-8 byte (overlongs, surrogates, > U+10FFFF, truncated), or nullopt.
std::optional<size_t> find_invalid_utf8(std::string_view s);

}  // namespace ts
