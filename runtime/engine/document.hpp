// Reading a document for the context: the whole file as UTF-8 text, or a precise error.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ts {

// Offset of the first invalid UTF-8 byte (overlongs, surrogates, > U+10FFFF, truncated), or nullopt.
std::optional<size_t> find_invalid_utf8(std::string_view s);

// Reads a text document. Throws ts::Error: io (cannot open/read), invalid_arg (empty,
// binary — a NUL byte — or invalid UTF-8, each naming the byte offset). A UTF-8 BOM is dropped
// and CRLF line ends become LF.
std::string read_document(const std::string& path);

}  // namespace ts
